"""Pick the idea generator: the configured LLM, or the offline one when none is configured (or asked for).

Why one entry point: the CLI, batches and (later) the API all say "give me N ideas about X" and
show the user which generator answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.progress import CancelToken
from limner.http_client import HttpOptions
from limner.prompts.data_providers import DataProviders, load_data_providers
from limner.prompts.ideas import PromptIdea
from limner.prompts.llm import LlmIdeaGenerator, llm_config
from limner.prompts.offline import OfflineIdeaGenerator

MAX_IDEAS = 500


@dataclass(frozen=True)
class Ideation:
    """Ideas plus a line saying where they came from (shown to the user)."""

    ideas: list[PromptIdea]
    source: str
    offline: bool


def generate_ideas(
    settings: Settings,
    count: int,
    *,
    theme: str | None = None,
    seed: int | None = None,
    offline: bool = False,
    data_dir: Path | None = None,
    examples: tuple[Path, ...] = (),
    options: HttpOptions | None = None,
    cancel: CancelToken | None = None,
) -> Ideation:
    """``count`` ideas about ``theme`` (sampled themes when None)."""
    if not 1 <= count <= MAX_IDEAS:
        raise InvalidRequestError(f"ask for 1 to {MAX_IDEAS} ideas", param="count")
    theme = theme.strip() if theme and theme.strip() else None
    data: DataProviders = load_data_providers(data_dir, examples)
    config = None if offline else llm_config(settings)
    if config is None:
        generator = OfflineIdeaGenerator(data, seed)
        source = generator.description if not offline else f"offline generator (asked for), seed {generator.seed}"
        return Ideation(generator.generate(count, theme), source, offline=True)
    llm = LlmIdeaGenerator(config, data, seed=seed, options=options)
    return Ideation(llm.generate(count, theme, cancel), llm.description, offline=False)
