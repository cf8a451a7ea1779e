"""Tests of the bundled demo target (readyctl/demo)."""
