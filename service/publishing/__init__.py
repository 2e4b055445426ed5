"""Where a source event becomes posts and activities: the accounts it concerns, each post's
lifecycle (Create, Update, Delete), scheduling, previews, and the activity recorded with one
delivery per target inbox."""
