"""Throughput of concurrent jobs on limner-tiny: one after another vs batched (services.batching).

Why: four users at once used to be served one after another; with batching, compatible jobs that
worker threads run at the same time share one pipeline call. Both contenders use the same engine in
one process, rounds alternate, and the median of the per-round ratios (images/s batched over
sequential) is printed with min-max.

    .venv/bin/python benchmarks/throughput.py [--jobs 4 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

from limner.config import Settings
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.services.batching import BatchingEngine
from limner.weights import LIMNER_TINY

PROMPTS = ("red heart", "an emoji of dog face", "an emoji of sun", "blue heart", "an emoji of cat face",
           "green heart", "an emoji of soccer ball", "yellow heart")  # fmt: skip


def requests(count: int) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=PROMPTS[index % len(PROMPTS)], seed=index, steps=20, guidance_scale=4.0,
                              width=64, height=64) for index in range(count)]  # fmt: skip


def sequential(engine: LocalEngine, jobs: list[GenerationRequest]) -> float:
    started = time.perf_counter()
    for job in jobs:
        engine.run(job)
    return time.perf_counter() - started


def batched(engine: LocalEngine, jobs: list[GenerationRequest]) -> float:
    batching = BatchingEngine(engine, engine, max_size=len(jobs), wait_seconds=1.0)
    threads = [threading.Thread(target=batching.run, args=(job, TaskInputs())) for job in jobs]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    settings = Settings(default_model=str(LIMNER_TINY), device="cpu", backend="torch", threads=args.threads,
                        _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    engine = LocalEngine(settings)
    engine.run(requests(1)[0])  # load outside the timed rounds
    for count in args.jobs:
        jobs = requests(count)
        speedups = [sequential(engine, jobs) / batched(engine, jobs) for _ in range(args.rounds)]
        print(
            f"{count} concurrent jobs, limner-tiny 64 px 20 steps, {args.threads} threads: batched throughput "
            f"{statistics.median(speedups):.2f}x sequential (min {min(speedups):.2f}, max {max(speedups):.2f})"
        )


if __name__ == "__main__":
    main()
