"""Celery dispatch: the broker carries job ids, the database row stays the source of truth.

Why Celery only as a doorbell: a job is committed to the table before the API answers; the
message (``limner.run_job(job_id)``) only says "this row is waiting". The worker takes the row by
id with one conditional UPDATE (``status='queued'`` -> ``'running'``), so a message delivered
twice, or after another worker already ran the job, is a no-op, and a job's images are written
once. Progress, cancel, results and retries all go through the row (and the event bus).

Delivery settings, chosen against Celery's known pitfalls with long tasks:

- ``task_acks_late=True``: the message is acknowledged when the job has ended, not when it
  starts, so a worker killed mid-job (kill -9, OOM, lost machine) leaves the message unacked and
  the broker delivers it again instead of losing it.
- ``task_reject_on_worker_lost=True``: with a prefork pool, a child that dies requeues its
  message at once rather than acking it as failed.
- ``worker_prefetch_multiplier=1`` (and one job at a time per process: ``--pool solo``, one
  process per GPU): a busy worker holds no second message that a free worker could run now.
- Redis ``visibility_timeout`` (``LIMNER_CELERY_VISIBILITY_TIMEOUT_SECONDS``, 24 h by default)
  larger than the longest job: Redis re-delivers an unacked message after this time even if its
  worker is alive, so a shorter timeout would deliver a still-running training again. (That
  second delivery would be a no-op here, but it wastes a worker's slot.) RabbitMQ has no
  visibility timeout; raise its ``consumer_timeout`` (30 min by default) above the longest job.
- A dead worker is not noticed by the broker for a long time (visibility timeout); the table's
  heartbeats are what notice it: every worker's sweeper re-queues a job whose heartbeat is older
  than ``LIMNER_JOB_HEARTBEAT_TIMEOUT_SECONDS`` and dispatches a new message for it, within about
  25 s. When the old message comes back a day later, its claim finds the job done and does nothing.
- Results are not stored in Celery (``task_ignore_result``): they are in the job row.

Queues by job kind: ``limner.generate`` and ``limner.train``, so a training box and a
generation box can each listen to their own kind (``limner worker --queues limner.train``). By
model: ``LIMNER_MODEL_QUEUES='{"sdxl-base": "limner.gpu48"}'`` sends that model's generations to
their own queue, for the workers that keep it loaded or have the GPU memory it needs (GPU classes:
``limner worker --queues limner.gpu48,limner.generate`` on the big cards, plain
``--queues limner.generate`` on the rest).
To watch workers, run Flower against the same broker (``celery --broker $LIMNER_BROKER_URL flower``):
``limner worker`` sends task events (``--task-events``) for it.

This module is imported only when ``LIMNER_BROKER_URL`` is set; without it limner never imports Celery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Celery
from celery.signals import worker_shutting_down

from limner.config import Settings

logger = logging.getLogger(__name__)

TASK_NAME = "limner.run_job"
QUEUE_PREFIX = "limner."
KINDS = ("generate", "train")


def queue_name(kind: str) -> str:
    """The broker queue that carries jobs of ``kind`` (``limner.generate``, ``limner.train``)."""
    return f"{QUEUE_PREFIX}{kind}"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for limner's broker (see the module docstring for why each is set)."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": settings.celery_visibility_timeout_seconds},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": queue_name("generate"),
        "task_serializer": "json",
        "accept_content": ["json"],
    }


def create_celery_app(settings: Settings, run_job: Callable[[str], object] | None = None) -> Celery:
    """A Celery app for ``settings``; with ``run_job`` (in workers) it registers the job task."""
    if not settings.broker_url:
        raise ValueError("create_celery_app needs LIMNER_BROKER_URL")
    app = Celery("limner", set_as_current=False)
    app.conf.update(celery_config(settings))
    if run_job is not None:

        def run(job_id: str) -> None:
            run_job(job_id)

        app.task(name=TASK_NAME, ignore_result=True)(run)
    return app


class CeleryDispatcher:
    """Sends one message per newly queued job to its queue; the message carries only the id.

    The queue is the kind's (``limner.generate``, ``limner.train``), or for a generation whose
    model ``model_queues`` names, that model's queue: workers that keep that model loaded (or
    have the GPU it needs) listen there, so its jobs go to them and no other worker loads it.
    """

    def __init__(self, app: Celery, model_queues: Mapping[str, str] | None = None) -> None:
        self._app = app
        self._model_queues = dict(model_queues or {})

    def queue_for(self, kind: str, model: str | None) -> str:
        if kind == "generate" and model is not None and model in self._model_queues:
            return self._model_queues[model]
        return queue_name(kind)

    def __call__(self, job_id: str, kind: str, model: str | None = None) -> None:
        self._app.send_task(TASK_NAME, args=[job_id], queue=self.queue_for(kind, model))


def run_worker(
    app: Celery,
    *,
    name: str,
    queues: Sequence[str],
    concurrency: int,
    pool: str,
    on_shutdown: Callable[[], None],
    loglevel: str = "INFO",
) -> None:
    """Run a Celery worker in this process until it is told to stop (blocks).

    ``on_shutdown`` runs when SIGTERM/SIGINT arrives: it interrupts the running job, which goes
    back to the queue (and to the broker) for another worker, so a deploy never waits for a long job.
    """

    def shutting_down(**_: object) -> None:
        on_shutdown()

    worker_shutting_down.connect(shutting_down, weak=False)
    app.worker_main(
        [
            "worker",
            f"--hostname={name}@%h",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            "--task-events",
        ]
    )
