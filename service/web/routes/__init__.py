"""Public HTTP routes: discovery, actors, collections, objects, inboxes, webhooks, feeds, health
and metrics."""
