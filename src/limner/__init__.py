"""limner: self-hosted image generation on Hugging Face diffusers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("limner")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
