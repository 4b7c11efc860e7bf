"""Build every service from settings, once per app. The API and the CLI share this wiring.

Why a small container: routes get what they need from one object made at start-up, instead of
module globals or a constructor with dozens of arguments.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from limner.config import Settings
from limner.db.models import Role
from limner.engines.base import Engine
from limner.services.auth.throttle import SlidingWindow
from limner.services.auth.tokens import Tokens
from limner.services.batches import Batches
from limner.services.batching import Batchable, BatchingEngine
from limner.services.characters import Characters
from limner.services.gallery import Gallery
from limner.services.generation import GenerationService
from limner.services.jobs.events import EventBus
from limner.services.jobs.generate import GenerateHandler, GenerationJobs
from limner.services.jobs.queue import Dispatch, JobQueue
from limner.services.jobs.submission import Submissions
from limner.services.jobs.train import TrainHandler, TrainingJobs
from limner.services.jobs.webhooks import WebhookDeliveries, WebhookSender
from limner.services.jobs.worker import Worker
from limner.services.models import ModelRegistry
from limner.services.store import Store, open_store
from limner.services.users import Users

logger = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 32
SECRET_FILE = "jwt_secret"


class InsecureSettingsError(RuntimeError):
    """The server refuses to start: e.g. production without a strong JWT secret."""


def jwt_secret(settings: Settings) -> str:
    """The signing secret: given (strong) in production; generated once and kept on disk in development."""
    given = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    if given is not None:
        if len(given) < MIN_SECRET_LENGTH or len(set(given)) < 8:
            raise InsecureSettingsError(
                f"LIMNER_JWT_SECRET is too weak: use at least {MIN_SECRET_LENGTH} random characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return given
    if settings.env == "production":
        raise InsecureSettingsError("LIMNER_ENV=production needs LIMNER_JWT_SECRET (32+ random characters)")
    path = Path(settings.data_dir) / SECRET_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret, encoding="utf-8")
    path.chmod(0o600)
    return secret


@dataclass
class Services:
    """The server's services: the installation's :class:`Store` plus queue, worker, events and auth."""

    store: Store
    generation: GenerationService
    tokens: Tokens
    batches: Batches
    queue: JobQueue
    submissions: Submissions
    generation_jobs: GenerationJobs
    training_jobs: TrainingJobs
    events: EventBus
    worker: Worker
    login_failures: SlidingWindow

    @property
    def settings(self) -> Settings:
        return self.store.settings

    @property
    def db(self) -> DbEngine:
        return self.store.db

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.store.sessions

    @property
    def users(self) -> Users:
        return self.store.users

    @property
    def gallery(self) -> Gallery:
        return self.store.gallery

    @property
    def models(self) -> ModelRegistry:
        return self.store.models

    @property
    def characters(self) -> Characters:
        return self.store.characters

    @property
    def trainings_dir(self) -> Path:
        return self.store.trainings_dir

    @property
    def engine(self) -> Engine:
        return self.generation.engine

    def start(self) -> None:
        """Recover jobs a previous process left running, bootstrap the admin, start the worker.

        With a broker the API claims nothing itself (Celery workers do); its worker only sweeps
        for jobs of dead workers.
        """
        self._recover()
        self._bootstrap_admin()
        if self.settings.workers:
            self._warm_up()
            self.worker.start(claim=not self.settings.broker_url)

    def start_worker(self) -> None:
        """Run only the worker (``limner worker``): another process serves the API on this database.

        With a broker the jobs come from Celery (:meth:`Worker.run_job`), so only the sweeper starts here.
        """
        self.queue.recover()  # stale heartbeats only: the other workers' running jobs are theirs
        self._warm_up()
        self.worker.start(claim=not self.settings.broker_url)

    def _warm_up(self) -> None:
        """With ``LIMNER_COMPILE``, compile the default model before taking jobs (a failure is logged, not fatal)."""
        if not self.settings.compile:
            return
        try:
            self.generation.warm_up()
        except Exception:
            logger.exception("warm-up of the default model failed; jobs will compile on first use")

    def _recover(self) -> None:
        # Alone, this process owns every "running" job, so all of them died with the previous run.
        # Beside external (or Celery) workers only jobs whose heartbeat went stale are taken back.
        alone = not (self.settings.external_workers or self.settings.broker_url)
        requeued, failed = self.queue.recover(all_running=alone)
        if requeued or failed:
            logger.warning("recovered jobs from a previous run: %d re-queued, %d failed", requeued, failed)

    def stop(self) -> None:
        self.worker.stop()
        self.events.close()
        self.store.close()

    def _bootstrap_admin(self) -> None:
        settings = self.settings
        if not settings.admin_username or settings.admin_password is None:
            return
        with self.sessions() as session:
            if self.users.count(session) == 0:
                self.users.create(
                    session, settings.admin_username, settings.admin_password.get_secret_value(), Role.ADMIN
                )
                logger.info("created admin %s", settings.admin_username)


def _shared_redis_url(settings: Settings) -> str | None:
    """The Redis that processes share events and rate limits through: LIMNER_EVENTS_URL, else a Redis broker."""
    if settings.events_url:
        return settings.events_url
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return None


def _event_bus(settings: Settings) -> EventBus:
    """Redis pub/sub when configured (or when the broker is Redis), so SSE of any API process sees any worker."""
    url = _shared_redis_url(settings)
    if url is None:
        return EventBus()
    from limner.services.jobs.redis_events import RedisEventBus

    return RedisEventBus(url)


def _window(settings: Settings, name: str, limit: int, window: float) -> SlidingWindow:
    """A rate-limit window shared by all API processes through Redis when there is one, else this process's."""
    url = _shared_redis_url(settings)
    if url is None:
        return SlidingWindow(limit, window)
    from limner.services.jobs.redis_window import RedisSlidingWindow

    return RedisSlidingWindow(url, name, limit, window)


def build_services(settings: Settings, engine: Engine | None = None) -> Services:
    """Open (and migrate) the database, and wire the services; nothing runs until ``start()``."""
    secret = jwt_secret(settings)
    store = open_store(settings)
    lookup = store.model_lookup()
    if engine is None:
        from limner.engines.router import build_engine

        router = build_engine(settings, aliases=store.engine_aliases())
        engine = router
        local = router.local
        if settings.workers > 1 and settings.batch_max_size > 1 and isinstance(local, Batchable):
            # Several worker threads: compatible jobs they run at the same time share one pipeline call.
            engine = BatchingEngine(
                router, local, max_size=settings.batch_max_size, wait_seconds=settings.batch_wait_seconds
            )
    generation = GenerationService(settings, engine, lookup)
    dispatch: Dispatch | None = None
    if settings.broker_url:  # Celery is imported only here, and only when a broker is configured
        from limner.services.jobs.celery_app import CeleryDispatcher, create_celery_app

        dispatch = CeleryDispatcher(create_celery_app(settings), settings.model_queues)
    queue = JobQueue(
        store.sessions,
        max_queued=settings.max_queue_size,
        max_attempts=settings.job_max_attempts,
        heartbeat_timeout=timedelta(seconds=settings.job_heartbeat_timeout_seconds),
        dispatch=dispatch,
        redispatch_after=timedelta(seconds=settings.job_redispatch_seconds),
    )
    events = _event_bus(settings)
    worker = Worker(
        queue,
        store.sessions,
        {
            "generate": GenerateHandler(generation, store.gallery, store.characters),
            "train": TrainHandler(
                settings, store.models, lookup, store.gallery, store.sessions, store.trainings_dir, store.files
            ),
        },
        events,
        WebhookDeliveries(
            WebhookSender(settings.webhook_timeout_seconds, allow_private=settings.webhook_allow_private)
        ),
        threads=max(settings.workers, 1),
        heartbeat_interval=settings.job_heartbeat_interval_seconds,
        recover_interval=settings.job_recover_interval_seconds,
    )
    submissions = Submissions(
        queue, _window(settings, "jobs", settings.jobs_per_minute, 60.0), settings.jobs_per_minute
    )
    return Services(
        store=store,
        generation=generation,
        tokens=Tokens(secret, timedelta(minutes=settings.jwt_expiry_minutes)),
        batches=Batches(queue, store.gallery, generation, settings.max_queue_size),
        queue=queue,
        submissions=submissions,
        generation_jobs=GenerationJobs(generation, store.gallery, store.characters, store.sessions, submissions),
        training_jobs=TrainingJobs(settings, generation, submissions, store.models, store.trainings_dir, store.files),
        events=events,
        worker=worker,
        login_failures=_window(settings, "login", settings.login_max_failures, settings.login_window_seconds),
    )
