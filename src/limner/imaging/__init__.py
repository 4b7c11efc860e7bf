"""Reading untrusted input pictures and writing output PNGs with their parameters."""
