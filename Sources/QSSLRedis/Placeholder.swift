// Redis client: in progress.
