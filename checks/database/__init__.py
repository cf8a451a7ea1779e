"""Built-in database checks."""
