"""The REST API: native resources under /v1, OpenAI-compatible image endpoints, health and metrics."""
