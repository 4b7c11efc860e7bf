"""Ideas from an LLM over the OpenAI-compatible chat completions API (OpenAI, Ollama, vLLM, llama.cpp ...).

The request asks for structured output with a strict JSON Schema (``response_format:
json_schema``); a server that refuses that gets plain JSON mode (``json_object``) instead. Every
answer is validated into ``PromptIdea``s; a bad answer is sent back with the validation error and
retried, and after ``max_attempts`` the error says what was wrong. Each idea is seeded with a
different sample from the data providers, and few-shot examples show the expected style.
"""

from __future__ import annotations

import json
import random
import re
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from limner.config import Settings
from limner.core.progress import CancelToken
from limner.http_client import HttpOptions, ProviderHttp, ProviderRequestError
from limner.prompts.data_providers import DataProviders
from limner.prompts.errors import PromptGenerationError
from limner.prompts.ideas import PromptIdea, idea_json_schema

SYSTEM_PROMPT = (
    "You write ideas for pictures and the prompts that make them with a text-to-image model. "
    'Answer with JSON only, shaped as {"ideas": [...]}. Each idea has: "title" (2 to 8 words, unique), '
    '"description" (one or two sentences for people), "metatags" (3 to 8 short lowercase tags), '
    '"prompt" (one paragraph of comma-separated visual details: subject, setting, composition, lighting, '
    'style, medium; under 80 words) and "negative_prompt" (comma-separated things to avoid).'
)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)
MAX_FEW_SHOT = 3


@dataclass(frozen=True)
class LlmConfig:
    """Where the chat model is and which one to use."""

    base_url: str
    api_key: str | None
    model: str

    @property
    def description(self) -> str:
        return f"{self.model} at {self.base_url}"


def llm_config(settings: Settings) -> LlmConfig | None:
    """``LIMNER_LLM_BASE_URL`` if set (its key, else OpenAI's when it is OpenAI's URL); else OpenAI with
    ``OPENAI_API_KEY``; else None, meaning: no LLM is configured."""
    openai_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if settings.llm_base_url:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        if key is None and settings.llm_base_url.rstrip("/") == settings.openai_base_url.rstrip("/"):
            key = openai_key
        return LlmConfig(settings.llm_base_url.rstrip("/"), key, settings.llm_model)
    if openai_key:
        return LlmConfig(settings.openai_base_url.rstrip("/"), openai_key, settings.llm_model)
    return None


class LlmIdeaGenerator:
    """Asks the chat model for ideas in rounds of ``batch_size``, until ``count`` distinct ones are valid."""

    def __init__(
        self,
        config: LlmConfig,
        data: DataProviders,
        *,
        seed: int | None = None,
        options: HttpOptions | None = None,
        max_attempts: int = 3,
        batch_size: int = 5,
        temperature: float = 0.9,
    ) -> None:
        self.config = config
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self._data = data
        self._rng = random.Random(self.seed)
        self._options = options or HttpOptions()
        self._max_attempts = max(1, max_attempts)
        self._batch_size = max(1, batch_size)
        self._temperature = temperature
        self._json_schema = True

    @property
    def description(self) -> str:
        return f"LLM {self.config.description}"

    def generate(self, count: int, theme: str | None = None, cancel: CancelToken | None = None) -> list[PromptIdea]:
        cancel = cancel or CancelToken()
        ideas: list[PromptIdea] = []
        titles: set[str] = set()
        rounds_left = 2 * (-(-count // self._batch_size)) + 1
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        with ProviderHttp(provider="llm", base_url=self.config.base_url, headers=headers, options=self._options,
                          credential_name="LIMNER_LLM_API_KEY") as http:  # fmt: skip
            while len(ideas) < count:
                if rounds_left == 0:
                    raise PromptGenerationError(
                        f"the LLM ({self.config.model}) gave {len(ideas)} distinct ideas of the {count} asked for"
                    )
                rounds_left -= 1
                wanted = min(self._batch_size, count - len(ideas))
                for idea in self._round(http, wanted, theme, cancel)[:wanted]:
                    if idea.title.lower() not in titles:
                        titles.add(idea.title.lower())
                        ideas.append(idea)
        return ideas[:count]

    def _round(self, http: ProviderHttp, wanted: int, theme: str | None, cancel: CancelToken) -> list[PromptIdea]:
        messages = self._messages(wanted, theme)
        problem = "no answer"
        for _ in range(self._max_attempts):
            content = self._complete(http, messages, cancel)
            try:
                return parse_ideas(content)
            except (ValueError, ValidationError) as exc:
                problem = _describe(exc)
            messages = [
                *messages,
                {"role": "assistant", "content": content[:4000]},
                {"role": "user", "content": f"That answer is not valid ({problem}). Reply again with only the JSON."},
            ]
        raise PromptGenerationError(
            f"the LLM ({self.config.model}) gave no valid ideas in {self._max_attempts} attempts; "
            f"last problem: {problem}"
        )

    def _complete(self, http: ProviderHttp, messages: list[dict[str, str]], cancel: CancelToken) -> str:
        body: dict[str, Any] = {"model": self.config.model, "messages": messages, "temperature": self._temperature}
        if self._json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "prompt_ideas", "strict": True, "schema": idea_json_schema()},
            }
        else:
            body["response_format"] = {"type": "json_object"}
        try:
            response = http.request("POST", "chat/completions", json=body, cancel=cancel)
        except ProviderRequestError:
            if not self._json_schema:
                raise
            # Older or smaller servers know JSON mode but not schemas: ask again in JSON mode.
            self._json_schema = False
            return self._complete(http, messages, cancel)
        answer = http.json_of(response)
        try:
            message = answer["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise PromptGenerationError("the LLM answered without choices[0].message") from None
        if message.get("refusal"):
            raise PromptGenerationError(f"the LLM refused: {message['refusal']}")
        return str(message.get("content") or "")

    def _messages(self, wanted: int, theme: str | None) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        examples = list(self._data.examples)
        for example in self._rng.sample(examples, min(MAX_FEW_SHOT, len(examples))):
            messages.append({"role": "user", "content": f"Theme: {example.theme or 'any'}\nWrite 1 idea."})
            messages.append({"role": "assistant", "content": json.dumps({"ideas": [example.idea.model_dump()]})})
        hints = [self._data.sample(self._rng, theme) for _ in range(wanted)]
        lines = [f"{index}. {hint.as_hint()}" for index, hint in enumerate(hints, start=1)]
        chosen_theme = theme or ", ".join(sorted({hint.theme for hint in hints}))
        messages.append(
            {
                "role": "user",
                "content": f"Theme: {chosen_theme}\nWrite {wanted} ideas, each different, one per hint "
                "(use the hints as inspiration, not as text to copy):\n" + "\n".join(lines),
            }
        )
        return messages


def parse_ideas(content: str) -> list[PromptIdea]:
    """Ideas from an answer: ``{"ideas": [...]}``, a bare list, or one idea; code fences are tolerated."""
    text = _FENCE.sub("", content.strip())
    if not text:
        raise ValueError("the answer is empty")
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("the answer holds no JSON")
    body, _ = json.JSONDecoder().raw_decode(text[start:])
    items = body.get("ideas", [body]) if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        raise ValueError('expected {"ideas": [...]} with at least one idea')
    ideas = []
    for number, item in enumerate(items, start=1):
        try:
            ideas.append(PromptIdea.model_validate(item))
        except ValidationError as exc:
            raise ValueError(f"idea {number}: {_describe(exc)}") from exc
    return ideas


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problem = exc.errors()[0]
        return f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
    return str(exc)
