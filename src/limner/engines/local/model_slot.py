"""One loaded model and the LoRA adapters active on it, safe to share between threads.

Why a gate: LoRA adapters live inside the shared UNet and text encoder, so switching which
adapters are active changes what every run on that model computes. Runs that want the same
adapter set overlap freely; a run that needs a different set waits until the running ones end,
then switches. Scheduler state is never shared (see ``schedulers.make_scheduler``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from limner.core.errors import InvalidRequestError, ModelDownloadError, first_line
from limner.engines.local.gpu_tuning import QkvFusion
from limner.engines.local.ip_adapter import AdapterSource, load_adapter
from limner.engines.local.model_refs import ModelSource, SourceKind
from limner.engines.local.schedulers import SchedulerTemplates
from limner.engines.local.tasks import DerivedPipelines
from limner.engines.local.textual_inversion import EmbeddingSource, LoadedEmbedding, load_embedding, unload_embedding

ActiveLoras = tuple[tuple[str, float], ...]
ActiveAdapter = tuple[str, float] | None  # (adapter key, scale)
ActiveEmbeddings = tuple[str, ...]  # keys of the textual-inversion embeddings loaded
ActiveState = tuple[ActiveLoras, ActiveAdapter, ActiveEmbeddings]


def adapter_name(source: ModelSource) -> str:
    """A stable adapter name for a LoRA source (peft names must be simple identifiers)."""
    digest = hashlib.sha1(f"{source.location}|{source.weight_name}".encode()).hexdigest()[:12]
    return f"lora_{digest}"


@dataclass
class ModelSlot:
    """A base pipeline plus the bookkeeping that lets concurrent runs share it."""

    name: str
    pipeline: Any  # a diffusers pipeline; typed loosely because diffusers' mixins are untyped
    load_seconds: float
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _active: ActiveState | None = ((), None, ())
    _running: int = 0
    _loaded_adapters: set[str] = field(default_factory=set)
    _ip_adapter: str | None = None
    _embeddings: dict[str, LoadedEmbedding] = field(default_factory=dict)
    fuse_qkv: bool = False  # fused QKV projections whenever no LoRA or IP-Adapter patches the attention
    derived: DerivedPipelines = field(default_factory=DerivedPipelines)  # task pipelines around these modules
    schedulers: SchedulerTemplates = field(default_factory=SchedulerTemplates)  # a fresh one for each run

    @contextmanager
    def using(
        self,
        loras: list[tuple[ModelSource, float]],
        ip_adapter: tuple[AdapterSource, float] | None = None,
        embeddings: tuple[EmbeddingSource, ...] = (),
    ) -> Iterator[Any]:
        """Hold the model with exactly ``loras`` (and the IP-Adapter at its scale, and the words of
        ``embeddings``) active for one run."""
        wanted_loras: ActiveLoras = tuple((adapter_name(source), weight) for source, weight in loras)
        wanted_embeddings: ActiveEmbeddings = tuple(sorted({source.key for source in embeddings}))
        adapter_state = (ip_adapter[0].key, ip_adapter[1]) if ip_adapter else None
        wanted: ActiveState = (wanted_loras, adapter_state, wanted_embeddings)
        with self._condition:
            while self._running and self._active != wanted:
                self._condition.wait()
            if self._active != wanted:
                self._active = None  # unknown until the switch completes
                fusion = QkvFusion(self.pipeline)
                fused = self.fuse_qkv and not wanted_loras and ip_adapter is None
                if not fused:
                    fusion.set(False)  # before adapters patch the separate projections
                self._switch_ip_adapter(ip_adapter)
                self._switch(loras, wanted_loras)
                if fused:
                    fusion.set(True)
                self._switch_embeddings(embeddings)
                self._active = wanted
            self._running += 1
        try:
            yield self.pipeline
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    def unload_loras(self) -> None:
        """Remove every adapter from the model, restoring its original weights exactly."""
        with self._condition:
            while self._running:
                self._condition.wait()
            if self._loaded_adapters:
                self.pipeline.unload_lora_weights()
                self._loaded_adapters.clear()
            self._active = None

    @property
    def loaded_adapters(self) -> frozenset[str]:
        return frozenset(self._loaded_adapters)

    def _switch_embeddings(self, embeddings: tuple[EmbeddingSource, ...]) -> None:
        """Unload the words no longer wanted (no run sees another's), then load the new ones."""
        wanted = {source.key: source for source in embeddings}
        for key in [key for key in self._embeddings if key not in wanted]:
            unload_embedding(self.pipeline, self._embeddings.pop(key))
        for key, source in wanted.items():
            if key not in self._embeddings:
                self._embeddings[key] = load_embedding(self.pipeline, source, self.name)

    @property
    def loaded_embeddings(self) -> frozenset[str]:
        """The words that textual-inversion embeddings added to the model now."""
        return frozenset(loaded.token for loaded in self._embeddings.values())

    def _switch_ip_adapter(self, ip_adapter: tuple[AdapterSource, float] | None) -> None:
        wanted_key = ip_adapter[0].key if ip_adapter else None
        if self._ip_adapter is not None and self._ip_adapter != wanted_key:
            self.pipeline.unload_ip_adapter()
            self._ip_adapter = None
        if ip_adapter is None:
            return
        if self._ip_adapter is None:
            load_adapter(self.pipeline, ip_adapter[0])
            self._ip_adapter = wanted_key
        self.pipeline.set_ip_adapter_scale(ip_adapter[1])

    def _switch(self, loras: list[tuple[ModelSource, float]], wanted: ActiveLoras) -> None:
        if not wanted:
            if self._loaded_adapters:
                self.pipeline.disable_lora()
            return
        if not hasattr(self.pipeline, "load_lora_weights"):
            raise InvalidRequestError(f"model {self.name} does not support LoRA adapters", param="loras")
        for source, _ in loras:
            name = adapter_name(source)
            if name not in self._loaded_adapters:
                self._load_adapter(source, name)
        self.pipeline.enable_lora()
        self.pipeline.set_adapters([name for name, _ in wanted], adapter_weights=[w for _, w in wanted])

    def _load_adapter(self, source: ModelSource, name: str) -> None:
        kwargs: dict[str, Any] = {"adapter_name": name, "use_safetensors": True}
        if source.weight_name:
            kwargs["weight_name"] = source.weight_name
        try:
            self.pipeline.load_lora_weights(source.location, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            reason = first_line(exc)
            if source.kind is SourceKind.HUB:
                raise ModelDownloadError(f"could not get LoRA {source.name}: {reason[:300]}", param="loras") from exc
            raise InvalidRequestError(
                f"LoRA {source.name} does not fit model {self.name}: {reason[:300]}", param="loras"
            ) from exc
        self._loaded_adapters.add(name)
