"""The JSON admin API under /api: each router calls the same service functions as the CLI and
the dashboard."""
