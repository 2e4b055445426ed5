"""Publishing to existing Mastodon accounts through their REST API, and reading back what a
post achieved there."""
