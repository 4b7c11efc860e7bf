"""Prometheus metrics, read from the queue table at scrape time.

Why a custom collector with its own registry: the numbers (queue depth, jobs by status, job
durations) live in the database, so every API process reports the same truth, and each app owns
its registry instead of sharing prometheus_client's global one.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from limner.db.models import Job, JobStatus
from limner.services.container import Services


class QueueCollector(Collector):
    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        with self._services.sessions() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).tuples().all())
            finished = session.execute(
                select(Job.status, Job.started_at, Job.finished_at).where(
                    Job.finished_at.is_not(None), Job.started_at.is_not(None)
                )
            ).all()
        depth = GaugeMetricFamily("limner_queue_depth", "Jobs waiting in the queue")
        depth.add_metric([], counts.get(JobStatus.QUEUED.value, 0))
        yield depth
        by_status = GaugeMetricFamily("limner_jobs", "Jobs by status", labels=["status"])
        for job_status in JobStatus:
            by_status.add_metric([job_status.value], counts.get(job_status.value, 0))
        yield by_status
        durations = SummaryMetricFamily("limner_job_duration_seconds", "Run time of finished jobs", labels=["status"])
        for job_status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED):
            seconds = [
                (finished_at - started_at).total_seconds()
                for status, started_at, finished_at in finished
                if status == job_status.value and started_at is not None and finished_at is not None
            ]
            durations.add_metric([job_status.value], count_value=len(seconds), sum_value=sum(seconds))
        yield durations
        failures = GaugeMetricFamily("limner_job_failures", "Failed jobs")
        failures.add_metric([], counts.get(JobStatus.FAILED.value, 0))
        yield failures


def metrics_registry(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(services))
    return registry
