"""The HTTP client is tested with the remote engines' fast retry options and recording sleep."""

from tests.engines.remote.conftest import options, sleeper  # noqa: F401  (fixtures shared with the engines)
