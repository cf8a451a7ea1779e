"""Alert rules and their routing (seed item 8)."""
