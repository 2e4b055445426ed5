"""Process infrastructure: settings, structured logs, the job queue on Redis, the embedded Redis
server, and encryption of stored credentials."""
