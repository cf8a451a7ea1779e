"""A buggy migration: the reverse SQL forgets the index the forward SQL creates."""

from django.db import migrations, models


class Migration(migrations.Migration):
    """Add notes_note.tags and an index on created_at; the reverse drops only the column."""

    dependencies = [("notes", "0002_note_title_index")]

    operations = [
        migrations.RunSQL(
            sql=[
                "ALTER TABLE notes_note ADD COLUMN tags text NULL",
                "CREATE INDEX notes_note_created_idx ON notes_note (created_at)",
            ],
            reverse_sql=["ALTER TABLE notes_note DROP COLUMN tags"],
            state_operations=[
                migrations.AddField(
                    model_name="note", name="tags", field=models.TextField(null=True)
                ),
            ],
        ),
    ]
