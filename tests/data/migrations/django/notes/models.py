"""The fixture app's model."""

from django.db import models


class Note(models.Model):
    """A note."""

    title = models.CharField(max_length=200)
    body = models.TextField(default="")
    created_at = models.DateTimeField(auto_now_add=True)
    tags = models.TextField(null=True)

    class Meta:
        indexes = [models.Index(fields=["title"], name="notes_note_title_idx")]
