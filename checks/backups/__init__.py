"""Backups and restore drills (seed item 7)."""
