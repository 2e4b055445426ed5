"""The operations dashboard at /ops: pages, actions, session cookies and charts."""
