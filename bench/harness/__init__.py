"""The loopback harness shared by tests and benchmarks: a fleet of fake fediverse servers, the
relay as real processes or in-process, and senders that sign webhooks as real systems do."""
