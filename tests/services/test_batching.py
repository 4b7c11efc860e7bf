"""Batching: concurrent compatible jobs share one pipeline call and each gets what it would get alone."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from limner.config import Settings
from limner.core.errors import GenerationCanceledError
from limner.core.progress import CancelToken, ProgressEvent
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.services.batching import BatchingEngine


class CountingEngine(LocalEngine):
    """The local engine, counting its pipeline calls."""

    together: list[int]

    def run_together(self, requests, progress, cancels):  # type: ignore[no-untyped-def]
        self.together.append(len(requests))
        return super().run_together(requests, progress, cancels)


@pytest.fixture
def engine(tiny_models: dict[str, Path]) -> CountingEngine:
    counting = CountingEngine(Settings(default_model=str(tiny_models["txt2img"]), device="cpu", _env_file=None))  # type: ignore[call-arg]
    counting.together = []
    return counting


def request(prompt: str, seed: int, **fields: object) -> GenerationRequest:
    return GenerationRequest.model_validate({"prompt": prompt, "seed": seed, "steps": 3, "width": 64, "height": 64,
                                             **fields})  # fmt: skip


def concurrently(batching: BatchingEngine, requests: list[GenerationRequest], cancels: list[CancelToken],
                 events: list[list[ProgressEvent]]) -> list[GenerationResult | BaseException]:  # fmt: skip
    outcomes: list[GenerationResult | BaseException | None] = [None] * len(requests)

    def one(index: int) -> None:
        try:
            outcomes[index] = batching.run(requests[index], TaskInputs(), events[index].append, cancels[index])
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return [outcome for outcome in outcomes if outcome is not None]


def pixels(result: GenerationResult | BaseException, index: int = 0) -> np.ndarray:
    assert isinstance(result, GenerationResult), result
    return np.asarray(result.images[index].image, dtype=np.float64)


def test_compatible_jobs_run_as_one_call_with_their_own_pictures(engine: CountingEngine) -> None:
    requests = [request("a red fox", 1), request("a blue whale", 2, num_images=2), request("a cat", 3)]
    batching = BatchingEngine(engine, engine, max_size=3, wait_seconds=5.0)
    events: list[list[ProgressEvent]] = [[], [], []]
    results = concurrently(batching, requests, [CancelToken() for _ in requests], events)
    assert engine.together == [3]  # one pipeline call; the group was full before the wait ended
    for job, result in zip(requests, results, strict=True):
        alone = engine.run(job)
        assert isinstance(result, GenerationResult)
        assert [image.record.seed for image in result.images] == [image.record.seed for image in alone.images]
        assert result.images[0].record.request.prompt == job.prompt
        for index in range(job.num_images):
            assert np.abs(pixels(result, index) - pixels(alone, index)).mean() <= 1.0  # float tolerance
    assert all(len(stream) == 3 for stream in events)  # every job saw every step


def test_a_canceled_job_does_not_cancel_its_batch_mates(engine: CountingEngine) -> None:
    requests = [request("a red fox", 1), request("a blue whale", 2)]
    cancels = [CancelToken(), CancelToken()]
    cancels[0].cancel()
    results = concurrently(BatchingEngine(engine, engine, max_size=2, wait_seconds=5.0), requests, cancels, [[], []])
    assert isinstance(results[0], GenerationCanceledError)
    assert isinstance(results[1], GenerationResult)


def test_jobs_that_cannot_share_a_call_run_alone(engine: CountingEngine) -> None:
    requests = [request("a red fox", 1), request("a blue whale", 2, steps=2)]  # other step counts
    results = concurrently(BatchingEngine(engine, engine, max_size=4, wait_seconds=0.2), requests,
                           [CancelToken(), CancelToken()], [[], []])  # fmt: skip
    assert engine.together == []
    assert all(isinstance(result, GenerationResult) for result in results)


def test_each_job_of_a_batch_sees_its_own_step_previews(engine: CountingEngine) -> None:
    requests = [request("a red fox", 1, preview=True), request("a blue whale", 2, preview=True)]
    events: list[list[ProgressEvent]] = [[], []]
    concurrently(BatchingEngine(engine, engine, max_size=2, wait_seconds=5.0), requests,
                 [CancelToken(), CancelToken()], events)  # fmt: skip
    assert engine.together == [2]
    first = [next((event.preview for event in stream if event.preview is not None), None) for stream in events]
    assert all(preview is not None for preview in first)
    assert first[0].tobytes() != first[1].tobytes()  # type: ignore[union-attr]
