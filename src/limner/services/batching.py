"""Batching of concurrent jobs: compatible requests that arrive together run as one pipeline call.

Why here, around the engine: the worker's threads each claim a job and call the generation service;
when several of them ask for the same model, size, steps, guidance, sampler and LoRA set (prompts and
seeds may differ), one batched diffusers call makes all their images at once, which on a CPU or a
GPU costs far less than the calls one after another. The first request of a group waits a short
moment (``wait_seconds``) for mates, up to ``max_size``; each request still gets its own images
(one generator per image: the same seed gives the same pixels as a solo run, within float
tolerance), its own progress, and its own cancel (a canceled request does not stop its mates).
Requests that cannot batch (other tasks, references, remote providers) pass straight through.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from limner.core.errors import GenerationCanceledError
from limner.core.progress import CancelToken, ProgressCallback, ignore_progress
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest
from limner.engines.base import Engine, TaskInputs


@runtime_checkable
class Batchable(Protocol):
    """An engine that can run compatible requests as one call (the local engine)."""

    def batch_key(self, request: GenerationRequest) -> Hashable | None: ...

    def run_together(
        self, requests: list[GenerationRequest], progress: list[ProgressCallback], cancels: list[CancelToken]
    ) -> list[GenerationResult | GenerationCanceledError]: ...


@dataclass
class _Member:
    request: GenerationRequest
    progress: ProgressCallback
    cancel: CancelToken
    done: threading.Event = field(default_factory=threading.Event)
    result: GenerationResult | BaseException | None = None


@dataclass
class _Group:
    key: Hashable
    members: list[_Member] = field(default_factory=list)
    closed: bool = False
    full: threading.Event = field(default_factory=threading.Event)


class BatchingEngine:
    """An engine that groups concurrent compatible requests for ``local`` and passes the rest to ``inner``."""

    def __init__(self, inner: Engine, local: Batchable, *, max_size: int, wait_seconds: float) -> None:
        self._inner = inner
        self._local = local
        self._max_size = max_size
        self._wait_seconds = wait_seconds
        self._open: dict[Hashable, _Group] = {}
        self._lock = threading.Lock()

    @property
    def local(self) -> Any:
        """The local engine (for health checks and tools that inspect loaded models)."""
        return getattr(self._inner, "local", self._inner)

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        self._inner.validate(request, inputs)

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        cancel = cancel or CancelToken()
        key = self._key(request, inputs)
        if key is None:
            return self._inner.run(request, inputs, progress, cancel)
        member = _Member(request, progress, cancel)
        group, leads = self._join(key, member)
        if leads:
            self._lead(group)
        member.done.wait()
        if isinstance(member.result, BaseException):
            raise member.result
        assert member.result is not None
        return member.result

    def _key(self, request: GenerationRequest, inputs: TaskInputs) -> Hashable | None:
        if self._max_size <= 1 or inputs.init_image is not None or inputs.reference_images:
            return None
        engine_for = getattr(self._inner, "engine_for", None)
        if engine_for is not None and engine_for(request) is not self._local:
            return None  # a remote provider
        return self._local.batch_key(request)

    def _join(self, key: Hashable, member: _Member) -> tuple[_Group, bool]:
        """Add ``member`` to the open group of ``key``, or open one and lead it."""
        with self._lock:
            group = self._open.get(key)
            leads = group is None
            if group is None:
                group = self._open[key] = _Group(key)
            group.members.append(member)
            if len(group.members) >= self._max_size:
                self._close(group)
            return group, leads

    def _close(self, group: _Group) -> None:
        group.closed = True
        if self._open.get(group.key) is group:
            del self._open[group.key]
        group.full.set()

    def _lead(self, group: _Group) -> None:
        """Wait for mates (or a full group), then run the group and hand each member its result."""
        group.full.wait(self._wait_seconds)
        with self._lock:
            if not group.closed:
                self._close(group)
        members = group.members
        try:
            if len(members) == 1:
                only = members[0]
                outcomes: list[Any] = [self._inner.run(only.request, TaskInputs(), only.progress, only.cancel)]
            else:
                outcomes = list(
                    self._local.run_together(
                        [member.request for member in members],
                        [member.progress for member in members],
                        [member.cancel for member in members],
                    )
                )
        except BaseException as exc:  # every member learns why the shared call failed
            outcomes = [exc] * len(members)
        for member, outcome in zip(members, outcomes, strict=True):
            member.result = outcome
            member.done.set()
