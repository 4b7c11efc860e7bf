"""A prompt idea: the structured unit that ideation produces and batches consume.

Why pydantic: LLM answers are untrusted text; validating them into this model (with clear
messages) is what lets a bad answer be retried instead of producing a broken batch.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

TITLE_MAX = 200

MAX_TAGS = 20


class PromptIdea(BaseModel):
    """One picture idea: a title for its folder, a description and tags for people, prompts for the model."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX)]
    description: Annotated[str, Field(max_length=2000)] = ""
    metatags: list[str] = Field(default_factory=list)
    prompt: Annotated[str, Field(min_length=1, max_length=4000)]
    negative_prompt: Annotated[str, Field(max_length=4000)] = ""

    @field_validator("metatags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> list[str]:
        """Accept a list or a comma-separated string; drop blanks and duplicates, keep order."""
        if value is None:
            return []
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError("must be a list of strings")
        tags: list[str] = []
        for item in items:
            tag = str(item).strip().lstrip("#").strip()
            if tag and tag.lower() not in (seen.lower() for seen in tags):
                tags.append(tag)
        return tags[:MAX_TAGS]

    @field_validator("title", "description", "prompt", "negative_prompt")
    @classmethod
    def _printable(cls, value: str) -> str:
        """Control characters would break prompts, CSV rows and PNG text chunks."""
        return "".join(ch if ch in "\n\t" or ord(ch) >= 32 else " " for ch in value).strip()


def idea_json_schema() -> dict[str, Any]:
    """The strict JSON Schema for ``{"ideas": [...]}``, as OpenAI-compatible ``json_schema`` output wants it."""
    string = {"type": "string"}
    idea = {
        "type": "object",
        "properties": {
            "title": string,
            "description": string,
            "metatags": {"type": "array", "items": string},
            "prompt": string,
            "negative_prompt": string,
        },
        "required": ["title", "description", "metatags", "prompt", "negative_prompt"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"ideas": {"type": "array", "items": idea}},
        "required": ["ideas"],
        "additionalProperties": False,
    }
