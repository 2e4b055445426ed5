"""Sources the relay polls instead of being called: RSS/Atom feeds and Forgejo/Gitea
repositories."""
