"""The fixture app: notes, with three migrations."""
