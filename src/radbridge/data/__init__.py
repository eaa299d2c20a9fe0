"""Package data files (see README.md)."""
