"""alerter package."""
