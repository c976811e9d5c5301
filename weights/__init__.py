"""Bundled weights (mapped from the repository's weights/ folder into the wheel)."""
