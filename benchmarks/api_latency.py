"""p95 latency of health, listing and gallery requests while a long generation job runs.

Why: model work must never block the event loop. This starts a real ``limner serve`` on loopback
with a tiny model (built here), keeps a long job running, and times light requests against it;
it prints the p50/p95 of each and their ratio to the same requests on an idle server.

    .venv/bin/python benchmarks/api_latency.py [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.live_server import LiveServer

from limner.testing.tiny_models import build_tiny_pipeline

ENDPOINTS = ("/healthz", "/v1/jobs?limit=20", "/v1/images?limit=20")


def measure(client: httpx.Client, headers: dict[str, str], count: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {endpoint: [] for endpoint in ENDPOINTS}
    for _ in range(count):
        for endpoint in ENDPOINTS:
            started = time.perf_counter()
            response = client.get(endpoint, headers=headers)
            timings[endpoint].append(time.perf_counter() - started)
            response.raise_for_status()
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per endpoint and phase")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="limner-bench-"))
    build_tiny_pipeline(root / "model")
    server = LiveServer(root / "data", root / "model")
    server.start()
    try:
        headers = {"Authorization": f"Bearer {server.token()}"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            client.post("/v1/jobs", json={"prompt": "warm up", "steps": 2, "width": 64, "height": 64}, headers=headers)
            idle = measure(client, headers, args.requests)
            job = client.post(
                "/v1/jobs", json={"prompt": "busy", "steps": 1000, "width": 256, "height": 256}, headers=headers
            ).json()
            while client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["status"] != "running":
                time.sleep(0.05)
            busy = measure(client, headers, args.requests)
            still_running = client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["status"] == "running"
            client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    finally:
        server.stop()
    columns = ("idle p50 ms", "idle p95 ms", "busy p50 ms", "busy p95 ms", "p95 ratio")
    print(f"{'endpoint':24} " + " ".join(f"{column:>12}" for column in columns))
    for endpoint in ENDPOINTS:
        idle_p95, busy_p95 = percentile(idle[endpoint], 0.95), percentile(busy[endpoint], 0.95)
        print(
            f"{endpoint:24} {statistics.median(idle[endpoint]) * 1e3:12.1f} {idle_p95 * 1e3:12.1f} "
            f"{statistics.median(busy[endpoint]) * 1e3:12.1f} {busy_p95 * 1e3:12.1f} {busy_p95 / idle_p95:10.2f}"
        )
    print(f"job still running during the whole busy phase: {still_running}")


if __name__ == "__main__":
    main()
