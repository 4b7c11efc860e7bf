"""Typed requests, results, errors and metadata: the vocabulary every layer shares (no I/O, no torch)."""
