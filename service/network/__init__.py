"""Outbound network policy: every outbound connection is made to an address the guard allowed."""
