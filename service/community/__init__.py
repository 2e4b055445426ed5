"""Community features around an account: moves, follower export and import, answers to follow
requests, featured posts and the backfill for new followers."""
