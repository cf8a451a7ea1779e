"""Secrets management (seed item 3)."""
