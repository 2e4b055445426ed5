"""Where a webhook enters: authenticated, stored before it is answered, counted when refused,
and retried by hand when its processing failed."""
