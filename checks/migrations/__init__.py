"""Built-in migrations checks."""
