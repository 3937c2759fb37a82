"""replayer package."""
