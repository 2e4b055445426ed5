"""Benchmarks and the loopback fediverse fleet they (and the integration tests) run against."""
