"""A sound migration: an index on title (Django reverses it exactly)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    """Index notes_note.title."""

    dependencies = [("notes", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="note",
            index=models.Index(fields=["title"], name="notes_note_title_idx"),
        ),
    ]
