"""Built-in indexes checks."""
