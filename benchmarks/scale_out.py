"""Throughput with 1 vs 2 Celery workers: N concurrent clients submit and follow jobs on limner-tiny.

Why: scaling out is worth its moving parts only if a second worker nearly doubles the jobs done
per second while the API stays quick to accept jobs. This starts a real ``limner serve`` (no
worker of its own) and ``limner worker`` processes (Celery, ``--pool solo``, one torch thread
each) on loopback, with the local Redis as broker and a SQLite database; each client submits its
jobs one after another and polls each until it ends. It prints the p50/p95 submit latency and
jobs/s per worker count, and the speed-up.

    .venv/bin/python benchmarks/scale_out.py [--clients 4] [--jobs 6] [--steps 8] [--size 128]

Needs Redis at 127.0.0.1:6379 (``--broker`` to change) and the ``celery`` extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.live_server import LiveServer

from limner.config import Settings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def start_workers(server: LiveServer, count: int) -> list[subprocess.Popen[bytes]]:
    workers = []
    logs = []
    for index in range(count):
        log = server.log.parent / f"worker-{index}.log"
        logs.append(log)
        command = [sys.executable, "-m", "limner", "worker"]
        workers.append(subprocess.Popen(command, env=server.env, stdout=log.open("wb"), stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 180
    for process, log in zip(workers, logs, strict=True):
        while " ready." not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    return workers


def run_job(client: httpx.Client, headers: dict[str, str], body: dict[str, object]) -> float:
    """Submit one job and poll it to the end; return the submit latency in seconds."""
    started = time.perf_counter()
    response = client.post("/v1/jobs", json=body, headers=headers)
    latency = time.perf_counter() - started
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
            return latency
        time.sleep(0.05)


def measure(workers: int, args: argparse.Namespace, model: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data:
        server = LiveServer(
            Path(data),
            Path(model),
            LIMNER_WORKERS="1",  # with a broker: only the sweeper runs in the API process
            LIMNER_EXTERNAL_WORKERS="true",
            LIMNER_BROKER_URL=args.broker,
            LIMNER_JOBS_PER_MINUTE="100000",
            LIMNER_MAX_QUEUE_SIZE="100000",
        )
        server.start()
        processes = start_workers(server, workers)
        try:
            headers = {"Authorization": f"Bearer {server.token()}"}
            body: dict[str, object] = {"prompt": "an emoji of a red apple", "steps": args.steps,
                                       "width": args.size, "height": args.size}  # fmt: skip
            with httpx.Client(base_url=server.url, timeout=120) as client:
                warm = [threading.Thread(target=run_job, args=(client, headers, body)) for _ in range(workers * 2)]
                for thread in warm:  # every worker loads the model before the clock starts
                    thread.start()
                for thread in warm:
                    thread.join()
                latencies: list[float] = []
                lock = threading.Lock()

                def client_loop() -> None:
                    with httpx.Client(base_url=server.url, timeout=120) as own:
                        for _ in range(args.jobs):
                            latency = run_job(own, headers, body)
                            with lock:
                                latencies.append(latency)

                clients = [threading.Thread(target=client_loop) for _ in range(args.clients)]
                started = time.perf_counter()
                for thread in clients:
                    thread.start()
                for thread in clients:
                    thread.join()
                wall = time.perf_counter() - started
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(60)
            server.stop()
    return {
        "jobs_per_s": len(latencies) / wall,
        "submit_p50_ms": statistics.median(latencies) * 1000,
        "submit_p95_ms": percentile(latencies, 0.95) * 1000,
        "jobs": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=6, help="jobs per client")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--broker", default=os.environ.get("LIMNER_BROKER_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--model", default=None, help="default: limner-tiny")
    args = parser.parse_args()
    model = args.model or Settings(_env_file=None).default_model  # type: ignore[call-arg]
    results = {count: measure(count, args, model) for count in (1, 2)}
    print(
        f"{args.clients} clients x {args.jobs} jobs, {model}, {args.steps} steps at {args.size}px, broker {args.broker}"
    )
    print(f"{'workers':>8} {'jobs/s':>8} {'submit p50 ms':>14} {'submit p95 ms':>14}")
    for count, result in results.items():
        print(
            f"{count:>8} {result['jobs_per_s']:>8.2f} {result['submit_p50_ms']:>14.1f} {result['submit_p95_ms']:>14.1f}"
        )
    print(f"speed-up with 2 workers: {results[2]['jobs_per_s'] / results[1]['jobs_per_s']:.2f}x")


if __name__ == "__main__":
    main()
