"""Prometheus metrics, read from the database at scrape time.

Why a custom collector with its own registry: the numbers (queue depth, jobs by status, job
durations) live in the database, so every API process reports the same truth, and each app owns
its registry instead of sharing prometheus_client's global one. A scrape runs one grouped count and
reads the job counters (kept as jobs finish); it never reads finished jobs one by one.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from limner.db.models import Job, JobCounter, JobStatus
from limner.services.container import Services


class QueueCollector(Collector):
    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        with self._services.sessions() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).tuples().all())
            counters = {counter.status: counter for counter in session.scalars(select(JobCounter)).all()}
        depth = GaugeMetricFamily("limner_queue_depth", "Jobs waiting in the queue")
        depth.add_metric([], counts.get(JobStatus.QUEUED.value, 0))
        yield depth
        by_status = GaugeMetricFamily("limner_jobs", "Jobs by status", labels=["status"])
        for job_status in JobStatus:
            by_status.add_metric([job_status.value], counts.get(job_status.value, 0))
        yield by_status
        durations = SummaryMetricFamily("limner_job_duration_seconds", "Run time of finished jobs", labels=["status"])
        for job_status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED):
            counter = counters.get(job_status.value)
            count, total = (counter.finished, counter.seconds) if counter is not None else (0, 0.0)
            durations.add_metric([job_status.value], count_value=count, sum_value=total)
        yield durations
        failures = GaugeMetricFamily("limner_job_failures", "Failed jobs")
        failures.add_metric([], counts.get(JobStatus.FAILED.value, 0))
        yield failures


def metrics_registry(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(services))
    return registry
