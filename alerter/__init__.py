"""The alerter process: limits on the stored figures and the feed's health, sent through Apprise."""
