"""The worker tier: renders and sends the emails the web tier enqueued."""
