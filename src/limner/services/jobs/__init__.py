"""The durable job queue, its in-process worker, progress events and completion webhooks."""
