"""Passwords, tokens, API keys and throttling."""
