"""Where deliveries are claimed, signed, sent and retried: the fan-out engine, its store, the
signed POST and the connection pool it goes through, destination hosts and operator actions."""
