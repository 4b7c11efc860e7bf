"""Styles: a look applied to any request — an optional LoRA plus prompt text and defaults.

Why data: users add styles (TOML) without code. A style whose LoRA is not installed fails before
anything runs, with the command that installs it, instead of a download in the middle of a job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from limner.catalog import load_catalog
from limner.core.errors import InvalidRequestError, ModelNotFoundError
from limner.core.providers import split_provider
from limner.core.requests import LoraSpec

BUILTIN_STYLES_RESOURCE = "styles.toml"


class Style(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    lora: str | None = None
    lora_weight: Annotated[float, Field(ge=-4, le=4)] = 1.0
    base: str | None = None
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    negative_prompt: str = ""
    steps: Annotated[int | None, Field(ge=1)] = None
    guidance_scale: Annotated[float | None, Field(ge=0)] = None
    ip_adapter_scale: Annotated[float | None, Field(ge=0, le=2)] = None

    def apply(self, fields: Mapping[str, Any], *, with_lora: bool = True) -> dict[str, Any]:
        """Wrap the prompt, add the negative prompt and LoRA, fill defaults the user left unset."""
        merged = dict(fields)
        merged["prompt"] = f"{self.prompt_prefix}{fields.get('prompt') or ''}{self.prompt_suffix}"
        if self.negative_prompt:
            own = str(fields.get("negative_prompt") or "")
            merged["negative_prompt"] = f"{own}, {self.negative_prompt}" if own else self.negative_prompt
        if self.lora and with_lora:
            merged["loras"] = [*fields.get("loras", []), LoraSpec(ref=self.lora, weight=self.lora_weight)]
        for key in ("steps", "guidance_scale", "ip_adapter_scale"):
            if merged.get(key) is None and getattr(self, key) is not None:
                merged[key] = getattr(self, key)
        return merged

    def check_installed(self) -> None:
        """Refuse a hub LoRA that is not in the local cache, naming the command that fetches it."""
        if not self.lora or Path(self.lora).expanduser().exists():
            return
        parts = self.lora.split("/")
        if len(parts) < 2:
            raise ModelNotFoundError(f"style {self.name!r}: LoRA {self.lora} not found", param="style")
        repo = "/".join(parts[:2])
        filename = "/".join(parts[2:]) or None
        from huggingface_hub import hf_hub_download, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            if filename:
                hf_hub_download(repo, filename, local_files_only=True)
            else:
                snapshot_download(repo, local_files_only=True)
        except (LocalEntryNotFoundError, OSError, ValueError) as exc:
            command = f"hf download {repo}" + (f" {filename}" if filename else "")
            raise ModelNotFoundError(
                f"style {self.name!r} needs the LoRA {self.lora}, which is not installed; install it with "
                f"`{command}`" + (f" (it fits {self.base} models)" if self.base else ""),
                param="style",
            ) from exc


def load_styles(user_file: Path | None = None) -> dict[str, Style]:
    return load_catalog(BUILTIN_STYLES_RESOURCE, Style, "style", "styles_file", user_file)


def apply_style(fields: Mapping[str, Any], styles: Mapping[str, Style]) -> dict[str, Any]:
    """Apply ``fields["style"]`` if set (checking its weights are installed).

    For a remote model (``replicate:...``, ``openai:...``) the style's prompt wording and defaults
    apply but not its LoRA, which only a local model can load: a remote character model applies its
    own copy of the style, chosen by the style's name (see the Replicate profiles).
    """
    name = fields.get("style")
    if not name:
        return dict(fields)
    style = styles.get(str(name))
    if style is None:
        raise InvalidRequestError(f"unknown style {name!r} (known: {', '.join(sorted(styles))})", param="style")
    provider, _ = split_provider(str(fields.get("model") or ""))
    if provider is None:
        style.check_installed()
    return style.apply(fields, with_lora=provider is None)
