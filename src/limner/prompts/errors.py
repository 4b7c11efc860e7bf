"""Errors of prompt ideation."""

from __future__ import annotations

from limner.core.errors import LimnerError


class PromptGenerationError(LimnerError):
    """The LLM gave no usable ideas (bad JSON after retries, a refusal, too few ideas)."""

    code = "prompt_generation_failed"
