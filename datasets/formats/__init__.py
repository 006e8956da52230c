"""customs-vision."""
