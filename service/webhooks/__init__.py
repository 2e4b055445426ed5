"""Where a webhook enters: each sender declared once (sources), authenticated, stored before
it is answered, counted when refused, and retried by hand when its processing failed."""
