"""Engines turn a request into images: the local diffusers engine, and later remote providers."""
