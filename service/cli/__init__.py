"""The `fedirelay` command line."""
