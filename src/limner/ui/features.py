"""Which optional API features a server has, read from its ``/openapi.json``.

Why: the UI is newer or older than the server it talks to. Pages for characters, prompt ideas,
batches, the model registry and trainings check here first and say plainly that the server does
not offer the feature yet, instead of failing on a 404 or pretending to work.
The paths are the ones the project's issues name; keep them in step with ``limner.api.routes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Feature:
    """A capability and the route that proves the server has it."""

    name: str
    method: str
    path: str

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


CHARACTERS = Feature("Saved characters", "GET", "/v1/characters")
CHARACTER_CREATE = Feature("Saving characters", "POST", "/v1/characters")
PROMPT_IDEAS = Feature("Prompt ideas to edit before running", "POST", "/v1/prompts/ideas")
BATCHES = Feature("Batches", "POST", "/v1/batches")
MODELS = Feature("The model registry", "GET", "/v1/models")
MODEL_INSTALL = Feature("Installing models", "POST", "/v1/models/install")
MODEL_IMPORT = Feature("Importing models", "POST", "/v1/models/import")
TRAININGS = Feature("Training", "POST", "/v1/trainings")
TRAINING_LIST = Feature("Training runs", "GET", "/v1/trainings")
SERVER_INFO = Feature("Device and loaded models", "GET", "/v1/server")


@dataclass(frozen=True)
class ServerFeatures:
    """The routes one server offers (``"GET /v1/images"`` ...)."""

    routes: frozenset[str]

    @classmethod
    def from_openapi(cls, document: dict[str, Any]) -> ServerFeatures:
        return cls(
            frozenset(
                f"{method.upper()} {path}"
                for path, operations in (document.get("paths") or {}).items()
                for method in operations
                if method.lower() in ("get", "post", "put", "patch", "delete")
            )
        )

    def has(self, feature: Feature) -> bool:
        return feature.route in self.routes

    def missing(self, *features: Feature) -> list[Feature]:
        return [feature for feature in features if not self.has(feature)]
