"""limner: self-hosted image generation on Hugging Face diffusers."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``limner.__version__``, read from the installed package's metadata when first asked for.

    Why lazily: ``importlib.metadata`` costs a noticeable share of ``limner --help``, which never needs it.
    """
    if name != "__version__":
        raise AttributeError(f"module 'limner' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("limner")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+local"
