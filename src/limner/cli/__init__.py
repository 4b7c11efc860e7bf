"""The ``limner`` command line: parses input, calls the engine, renders output. No model code."""
