"""Textual-inversion embeddings: new words whose vectors live in the text encoder's token table.

Why its own module: an embedding changes the shared tokenizer and text encoder of a loaded model,
so it is loaded and unloaded under the model slot's gate (see ``model_slot``), exactly like LoRAs;
a request that did not ask for an embedding never sees its word. References resolve before any
weights load (``.safetensors`` only: pickled ``.pt``/``.bin`` embeddings are refused).

Which word an embedding adds follows the formats in the wild:

- A1111 files (one ``emb_params`` tensor) and SDXL files (``clip_l`` + ``clip_g``): the file's name
  without ``.safetensors``, as in A1111 (``easynegative.safetensors`` -> ``easynegative``);
- diffusers files (``learned_embeds.safetensors``, one tensor named after its token): that token,
  e.g. ``<cat-toy>``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limner.core.errors import (
    InvalidRequestError,
    ModelDownloadError,
    ModelNotFoundError,
    UnsafeModelFormatError,
    first_line,
)
from limner.engines.local.model_refs import PICKLE_SUFFIXES, SourceKind, check_weights_file

PARAM = "embeddings"
DIFFUSERS_FILE = "learned_embeds.safetensors"
_A1111_KEY = "emb_params"
_SDXL_KEYS = frozenset({"clip_l", "clip_g"})
_HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class EmbeddingSource:
    """Where an embedding's file is: a local ``.safetensors`` file, or one on the hub (repo + file)."""

    kind: SourceKind
    location: str  # the file's path, or the hub repo id
    name: str  # what messages show; also the A1111 word (the file's stem)
    weight_name: str = DIFFUSERS_FILE  # the file inside a hub repo

    @property
    def key(self) -> str:
        """A stable identity for the slot's bookkeeping."""
        return hashlib.sha1(f"{self.kind}|{self.location}|{self.weight_name}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class LoadedEmbedding:
    """What one embedding added to a pipeline, so that exactly that can be taken out again."""

    source: EmbeddingSource
    token: str
    added: tuple[tuple[str, tuple[str, ...]], ...]  # (tokenizer attribute, the tokens added to it)


def resolve_embedding(ref: str) -> EmbeddingSource:
    """A file, a folder holding one ``.safetensors`` file, ``owner/repo`` or ``owner/repo/file.safetensors``."""
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError(
            f"embedding {path.name}: {path.suffix} files are pickles, which can run code when loaded, and are "
            "refused; use the embedding's .safetensors release or convert it",
            param=PARAM,
        )
    if _is_file(path):
        if path.suffix.lower() != ".safetensors":
            raise UnsafeModelFormatError(f"embedding {path.name} must be a .safetensors file", param=PARAM)
        check_weights_file(path, param=PARAM)
        return EmbeddingSource(SourceKind.SINGLE_FILE, str(path.resolve()), path.stem)
    if _is_dir(path):
        candidates = sorted(path.glob("*.safetensors"))
        if len(candidates) != 1:
            raise ModelNotFoundError(
                f"embedding folder {ref} must hold exactly one .safetensors file (found {len(candidates)}); "
                "name the file instead",
                param=PARAM,
            )
        check_weights_file(candidates[0], param=PARAM)
        return EmbeddingSource(SourceKind.SINGLE_FILE, str(candidates[0].resolve()), candidates[0].stem)
    parts = ref.split("/")
    if len(parts) >= 2 and _HUB_REPO.match("/".join(parts[:2])) and ".." not in ref:
        weight_name = "/".join(parts[2:]) or DIFFUSERS_FILE
        if not weight_name.endswith(".safetensors"):
            raise UnsafeModelFormatError(f"embedding {ref}: only .safetensors files are loaded", param=PARAM)
        return EmbeddingSource(SourceKind.HUB, "/".join(parts[:2]), ref, weight_name)
    raise ModelNotFoundError(
        f"embedding {ref!r} is neither an existing .safetensors file or folder nor a hub id like 'owner/name'",
        param=PARAM,
    )


def load_embedding(pipeline: Any, source: EmbeddingSource, model_name: str) -> LoadedEmbedding:
    """Add the embedding's word to ``pipeline``'s tokenizer(s) and text encoder(s)."""
    from safetensors.torch import load_file

    tensors = load_file(str(_local_file(source)), device="cpu")
    targets = _targets(pipeline, tensors, source, model_name)
    token = _token(tensors, source)
    added: list[tuple[str, tuple[str, ...]]] = []
    try:
        for tokenizer_name, encoder_name, vectors in targets:
            pipeline.load_textual_inversion(
                vectors, token=token, tokenizer=getattr(pipeline, tokenizer_name),
                text_encoder=getattr(pipeline, encoder_name),
            )  # fmt: skip
            count = vectors.shape[0] if vectors.ndim > 1 else 1
            added.append((tokenizer_name, (token, *(f"{token}_{index}" for index in range(1, count)))))
    except ValueError as exc:
        unload_embedding(pipeline, LoadedEmbedding(source, token, tuple(added)))
        raise InvalidRequestError(
            f"embedding {source.name} does not fit model {model_name}: {first_line(exc)[:300]}", param=PARAM
        ) from exc
    return LoadedEmbedding(source, token, tuple(added))


def unload_embedding(pipeline: Any, loaded: LoadedEmbedding) -> None:
    """Remove exactly the tokens ``loaded`` added (the token table returns to its former size)."""
    encoders = {"tokenizer": "text_encoder", "tokenizer_2": "text_encoder_2"}
    for tokenizer_name, tokens in loaded.added:
        pipeline.unload_textual_inversion(
            tokens=list(tokens), tokenizer=getattr(pipeline, tokenizer_name),
            text_encoder=getattr(pipeline, encoders[tokenizer_name]),
        )  # fmt: skip


def _targets(pipeline: Any, tensors: dict[str, Any], source: EmbeddingSource, model_name: str) -> list[Any]:
    """(tokenizer, text encoder, vectors) for each text encoder the embedding has vectors for."""
    if not hasattr(pipeline, "load_textual_inversion"):
        raise InvalidRequestError(f"model {model_name} does not take textual-inversion embeddings", param=PARAM)
    has_first = getattr(pipeline, "text_encoder", None) is not None
    has_second = getattr(pipeline, "text_encoder_2", None) is not None
    if tensors.keys() >= _SDXL_KEYS:
        if not has_second:
            raise InvalidRequestError(
                f"embedding {source.name} is an SDXL embedding (clip_l + clip_g); model {model_name} is not SDXL",
                param=PARAM,
            )
        pairs = [("tokenizer", "text_encoder", tensors["clip_l"])] if has_first else []
        return [*pairs, ("tokenizer_2", "text_encoder_2", tensors["clip_g"])]
    if len(tensors) != 1:
        raise InvalidRequestError(
            f"{source.name} is not a textual-inversion embedding (expected one tensor, or clip_l and clip_g; "
            f"found {', '.join(sorted(tensors)[:5])})",
            param=PARAM,
        )
    if has_second or not has_first:
        raise InvalidRequestError(
            f"embedding {source.name} has vectors for one text encoder (SD 1.x/2.x); model {model_name} needs an "
            "SDXL embedding (clip_l + clip_g)",
            param=PARAM,
        )
    return [("tokenizer", "text_encoder", next(iter(tensors.values())))]


def _token(tensors: dict[str, Any], source: EmbeddingSource) -> str:
    if len(tensors) == 1 and _A1111_KEY not in tensors:
        return next(iter(tensors))
    return Path(source.weight_name).stem if source.kind is SourceKind.HUB else source.name


def _local_file(source: EmbeddingSource) -> Path:
    if source.kind is not SourceKind.HUB:
        return Path(source.location)
    from huggingface_hub import hf_hub_download

    try:
        path = Path(hf_hub_download(source.location, source.weight_name))
    except Exception as exc:  # hub client errors come in many classes (offline, 404, gated)
        raise ModelDownloadError(
            f"could not get embedding {source.name} from the Hugging Face Hub: {first_line(exc)[:300]}", param=PARAM
        ) from exc
    check_weights_file(path, param=PARAM)
    return path


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False
