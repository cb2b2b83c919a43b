"""Training datasets."""
