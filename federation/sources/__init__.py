"""What sources send: webhook authentication and payload parsing (CMS, Ghost, Forgejo/Gitea,
GitHub), feeds, and the routing of events to accounts."""
