"""The worker: threads that claim jobs from the queue and run their handlers.

Why threads beside the event loop: model work must never block the API; the worker does it in
its own threads and reports through the queue table (durable state) and the event bus (live
progress). ``limner worker`` runs the same threads in a separate process over a shared database,
or, with a broker configured, runs jobs a Celery task hands it by id (:meth:`Worker.run_job`).

Liveness: while a job runs, the worker's heartbeat thread writes the job's heartbeat every
``heartbeat_interval`` seconds, whatever the job is doing (loading or downloading a model, waiting
for a remote provider, training), so a worker blocked in a long call is never taken for dead. A
sweeper thread re-queues jobs whose heartbeat is older than the queue's timeout; a dead worker's
job is back in the queue within ``timeout + recover_interval`` seconds (20 + 5 by default).

Overhead: the thread that runs a job writes nothing to the database between its claim and its end.
Step progress goes to the heartbeat thread (one per worker, started once, not one per job), which
writes it at most every ``PROGRESS_WRITE_SECONDS``, the first time once the job has run that long;
the finish writes the last step. A job shorter than that writes no progress row at all: its claim
(or, for a job handed over, its insert) already says it runs and its finish says it ended, and a write
in between only competed with the job and the answer for the cores (benchmarks/overhead.py). After a
job's end is published, what no answer waits for (the job's thumbnail; after a job handed over, the
next look at the queue) waits ``ANSWER_PAUSE_SECONDS``.

Hand-off: a job that this process stores while one of these threads waits for work comes to the
thread already claimed (:mod:`limner.services.jobs.hand_off`), without a claim or a look at the queue.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from limner.core.errors import GenerationCanceledError, LimnerError
from limner.core.progress import CancelToken, ProgressEvent
from limner.db.base import Base, utcnow
from limner.db.models import Job, JobStatus, User
from limner.services.jobs.events import EventBus
from limner.services.jobs.queue import JobQueue
from limner.services.jobs.webhooks import WebhookDeliveries

logger = logging.getLogger(__name__)

PROGRESS_WRITE_SECONDS = 1.0
"""How often step progress is written to the job row (other processes' SSE read it there), by the
heartbeat thread: at most this often, the first time once the job has run this long; the finish
writes the last step. This process's own listeners get every step at once, from memory. Why one
second: the row's readers poll it once a second (``SSE_POLL_SECONDS``, a client's GET), so a write
more often is seen by nobody; at 0.5 s a half-second job (limner-tiny on a busy 2-core machine)
wrote a progress row inside its own pipeline call."""
PROGRESS_EVENT_SECONDS = 0.1
"""Step events closer together than this are coalesced (the first, the last and those with a preview
always go out): on a small model a step takes milliseconds, and waking every listener that often
cost about 7% of a limner-tiny job (benchmarks/overhead.py)."""
ANSWER_PAUSE_SECONDS = 0.01
"""Work that no answer waits for holds off this long after a job's end is published, so that a sync answer
(about a millisecond on the event loop) does not wait for the interpreter meanwhile: the job's after-work
(its thumbnail), and, after a job handed over as it was stored (it came to an empty queue), the worker's
next look at the queue (a job handed over or queued here meanwhile is taken at once). On limner-tiny both
together held a sync answer back by about a millisecond (benchmarks/overhead.py). A job that another
process queues meanwhile waits these 10 ms more; an idle worker looks for such jobs only every
``IDLE_WAIT_SECONDS``."""
HEARTBEAT_INTERVAL_SECONDS = 5.0
RECOVER_INTERVAL_SECONDS = 5.0
IDLE_WAIT_SECONDS = 1.0


def run_now(task: Callable[[], None]) -> None:
    task()


@dataclass
class JobContext:
    """What a handler gets: the job, a progress callback and the cancel token it must honour.

    ``after`` takes work the job's result does not need (a gallery thumbnail): the worker runs it in
    its after-work thread once the job's end is recorded and published, so it delays neither the
    answer nor the next job.
    """

    job: Job
    progress: Callable[[ProgressEvent], None]
    cancel: CancelToken
    sessions: sessionmaker[Session]
    after: Callable[[Callable[[], None]], None] = run_now
    results: list[Base] = field(default_factory=list)
    discards: list[Callable[[], None]] = field(default_factory=list)

    def keep_with_success(self, rows: Sequence[Base], discard: Callable[[], None]) -> None:
        """Add ``rows`` (a job's gallery images) in the transaction that records the job's success.

        Both are committed together or not at all: a job never says "succeeded" without its images,
        and no image outlives a run that failed, was canceled or was taken over by another worker;
        then ``discard`` removes what the rows point to (their files).
        """
        self.results.extend(rows)
        self.discards.append(discard)


JobHandler = Callable[[JobContext], list[str]]


def preview_png_base64(picture: Any) -> str:
    """A step preview (a small PIL image) as base64 PNG, for event streams (zlib's fastest level: a preview
    is shown once, in the time between two steps)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()


def job_event(job: Job, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "status": job.status,
        "progress": job.progress,
        "step": job.step,
        "total_steps": job.total_steps,
        "result_image_ids": job.result_image_ids,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        **extra,
    }


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        sessions: sessionmaker[Session],
        handlers: Mapping[str, JobHandler],
        events: EventBus,
        webhooks: WebhookDeliveries | None = None,
        threads: int = 1,
        clock: Callable[[], datetime] = utcnow,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS,
        recover_interval: float = RECOVER_INTERVAL_SECONDS,
    ) -> None:
        self._queue = queue
        self._sessions = sessions
        self._handlers = dict(handlers)
        self._events = events
        self._webhooks = webhooks
        self._thread_count = threads
        self._clock = clock
        self._recover_interval = recover_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, CancelToken] = {}
        self._lock = threading.Lock()
        self.id = f"worker-{uuid.uuid4().hex[:8]}"
        self._beats = _Heartbeats(queue, self.id, heartbeat_interval, PROGRESS_WRITE_SECONDS)
        self._after = self._after_work()

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def start(self, *, claim: bool = True) -> None:
        """Start the sweeper and, unless ``claim`` is False (jobs come from a broker), the claiming threads."""
        self._stop.clear()
        targets = [(self._sweep, f"{self.id}-sweeper")]
        if claim:
            self._queue.hand_off.open(self.id, frozenset(self._handlers))
            targets += [(self._loop, f"{self.id}-{index}") for index in range(self._thread_count)]
        for target, name in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; interrupt running jobs, which go back to the queue; wait for the threads."""
        self._stop.set()
        not_taken = self._queue.hand_off.close()  # also wakes the idle threads
        with self._lock:
            for token in self._running.values():
                token.cancel()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        for job in not_taken:  # handed over as the worker stopped: back to the queue, for the next run
            self._release(job)
        self._beats.stop(timeout)
        after, self._after = self._after, self._after_work()  # a fresh one, should the worker run again
        after.shutdown(wait=True)  # what finished jobs left to do (thumbnails) is done before stop returns
        if self._webhooks is not None:
            self._webhooks.close()

    def cancel_running(self, job_id: str) -> None:
        """Stop a job this process runs without waiting for its next heartbeat."""
        with self._lock:
            token = self._running.get(job_id)
        if token is not None:
            token.cancel()

    def run_job(self, job_id: str) -> bool:
        """Run this job if it is still queued (a broker's delivery); False when another run took it."""
        job = self._queue.claim_by_id(job_id, self.id)
        if job is None:
            logger.info("job %s is not queued (done, running elsewhere or canceled): delivery ignored", job_id)
            return False
        self._process(job)
        return True

    def run_once(self, *, look_first: bool = True) -> bool:
        """Claim and run one job; False when the queue was empty (used by tests and the loop).

        ``look_first=False``: this process just queued a job, so the queue is not read before the claim."""
        job = self._queue.claim(self.id, frozenset(self._handlers), look_first=look_first)
        if job is None:
            return False
        self._process(job)
        return True

    def _sweep(self) -> None:
        """Every ``recover_interval``: take back jobs of silent workers, and resend lost broker messages."""
        while not self._stop.is_set():
            try:
                requeued, failed = self._queue.recover()
                self._queue.redispatch()  # a broker's lost messages (nothing without a broker)
            except Exception:  # the database may be away for a moment; try again next round
                logger.exception("recovering stale jobs failed")
            else:
                if requeued or failed:
                    logger.warning("jobs of lost workers: %d re-queued, %d failed", requeued, failed)
            self._stop.wait(self._recover_interval)

    def _loop(self) -> None:
        woken = False  # a job was queued in this process: claim without reading the queue first
        while not self._stop.is_set():
            if self._guarded(partial(self.run_once, look_first=not woken)):
                woken = False
                continue  # there may be more: look again at once
            outcome = self._queue.hand_off.wait(IDLE_WAIT_SECONDS)
            while isinstance(outcome, Job):  # stored as claimed by this worker, as it came to an empty queue
                self._guarded(partial(self._process, outcome))
                outcome = self._queue.hand_off.wait(ANSWER_PAUSE_SECONDS)  # see ANSWER_PAUSE_SECONDS
            woken = outcome

    @staticmethod
    def _guarded(work: Callable[[], object]) -> bool:
        """``work()``'s truth; False when it raised (a bug in a handler must not kill the worker thread)."""
        try:
            return bool(work())
        except Exception:
            logger.exception("worker loop error")
            return False

    def _after_work(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.id}-after")

    def _run_after(self, tasks: list[Callable[[], None]], not_before: float = 0.0) -> None:
        """Run ``tasks`` (a job's after-work), not before ``not_before`` (monotonic seconds)."""
        time.sleep(max(0.0, not_before - time.monotonic()))
        for task in tasks:
            try:
                task()
            except Exception:  # the job has ended; what is lost here (a thumbnail) is made again on demand
                logger.exception("after-work of a job failed")

    def _process(self, job: Job) -> None:
        cancel = CancelToken()
        with self._lock:
            self._running[job.id] = cancel
        deadline_hit = threading.Event()
        later: list[Callable[[], None]] = []
        context = JobContext(job=job, progress=self._progress_callback(job, cancel, deadline_hit), cancel=cancel,
                             sessions=self._sessions, after=later.append)  # fmt: skip
        kept = False
        self._events.publish(job.id, job_event(job))
        try:
            if job.deadline_at is not None and self._clock() >= job.deadline_at:
                self._finish(
                    job, JobStatus.FAILED, error=("deadline_exceeded", "the job's deadline passed in the queue")
                )
                return
            handler = self._handlers[job.kind]
            try:
                with self._beats.track(job.id, cancel):
                    image_ids = handler(context)
            except GenerationCanceledError:
                if self._stop.is_set() and not deadline_hit.is_set() and self._release(job):
                    return
                if deadline_hit.is_set():
                    self._finish(job, JobStatus.FAILED, error=("deadline_exceeded", "the job ran past its deadline"))
                else:
                    self._finish(job, JobStatus.CANCELED, error=("canceled", "canceled while running"))
            except LimnerError as exc:
                message = f"{exc.param}: {exc.public_message}" if exc.param else exc.public_message
                self._finish(job, JobStatus.FAILED, error=(exc.code, message))
            except Exception as exc:
                logger.exception("job %s failed", job.id)
                self._finish(job, JobStatus.FAILED, error=("internal_error", f"internal error: {type(exc).__name__}"))
            else:
                kept = self._finish(job, JobStatus.SUCCEEDED, image_ids=image_ids, results=context.results)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            if not kept:
                self._run_after(context.discards)
            if later:  # after the end is published (or the job handed back), and the answer's pause
                self._after.submit(self._run_after, later, time.monotonic() + ANSWER_PAUSE_SECONDS)

    def _progress_callback(
        self, job: Job, cancel: CancelToken, deadline_hit: threading.Event
    ) -> Callable[[ProgressEvent], None]:
        last_event: float | None = None

        def on_progress(event: ProgressEvent) -> None:
            nonlocal last_event
            now = time.monotonic()
            final = event.step == event.total_steps
            if event.preview is not None or final or last_event is None or now - last_event >= PROGRESS_EVENT_SECONDS:
                last_event = now
                update: dict[str, Any] = {"job_id": job.id, "status": JobStatus.RUNNING.value, "step": event.step,
                                          "total_steps": event.total_steps, "progress": event.fraction}  # fmt: skip
                if event.preview is not None:
                    update["preview"] = preview_png_base64(event.preview)
                self._events.publish(job.id, update)
            if job.deadline_at is not None and self._clock() >= job.deadline_at:
                deadline_hit.set()
                cancel.cancel()
            self._beats.progress(job.id, event.step, event.total_steps)  # written by the heartbeat thread

        return on_progress

    def _release(self, job: Job) -> bool:
        """On shutdown, hand the interrupted job back to the queue (unless it was asked to cancel)."""
        released = self._queue.release(job.id, self.id)
        if released is None:
            return False
        logger.info("job %s handed back to the queue on shutdown", job.id)
        self._events.publish(job.id, job_event(released))
        return True

    def _finish(
        self,
        job: Job,
        status: JobStatus,
        image_ids: list[str] | None = None,
        error: tuple[str, str] | None = None,
        results: Sequence[Base] = (),
    ) -> bool:
        """Record and publish the job's end; False when another worker or a cancel took the job over."""
        code, message = error if error else (None, None)
        finished = self._queue.finish(
            job.id, self.id, status, result_image_ids=image_ids, error_code=code, error_message=message, rows=results
        )
        if finished is None:
            return False
        try:
            self._events.publish(job.id, job_event(finished))
            if finished.webhook_url and self._webhooks is not None:
                self._send_webhook(finished)
        except Exception:  # the end is committed (with its images): a failed announcement must not undo it
            logger.exception("announcing the end of job %s failed", job.id)
        return True

    def _send_webhook(self, job: Job) -> None:
        if self._webhooks is None or job.webhook_url is None:
            return
        with self._sessions() as session:
            owner = session.get(User, job.owner_id)
            if owner is None:
                return
            secret = owner.webhook_secret
        payload = {"type": "job.finished", **job_event(job), "finished_at": job.finished_at}
        # Handed to the delivery thread: this (GPU) thread takes the next job at once.
        self._webhooks.submit(job.webhook_url, secret, payload, message_id=f"msg_{job.id}")


@dataclass
class _Beat:
    """One running job as the heartbeat thread sees it."""

    cancel: CancelToken
    beaten_at: float
    progress: tuple[int, int] | None = None
    written: tuple[int, int] | None = None
    written_at: float = 0.0


class _Heartbeats:
    """One thread per worker that keeps its running jobs' heartbeats fresh and writes their progress.

    Why a thread and not the progress callback: a handler can spend minutes where no step runs
    (loading or downloading weights, a remote provider's call, a training's data preparation), and
    a database write in the thread that runs the job would delay the job itself. Why one long-lived
    thread and not one per job: starting and joining a thread is on the path of every job.
    The heartbeat also carries the cancel flag back from the row: a cancel asked of another API
    process, or the job lost to a sweeper, stops the handler at its next check.
    """

    def __init__(self, queue: JobQueue, worker_id: str, interval: float, progress_interval: float) -> None:
        self._queue = queue
        self._worker_id = worker_id
        self._interval = interval
        self._progress_interval = progress_interval
        self._jobs: dict[str, _Beat] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @contextmanager
    def track(self, job_id: str, cancel: CancelToken) -> Iterator[None]:
        """Beat for ``job_id`` until the block ends (the claim has just written its first heartbeat)."""
        now = time.monotonic()
        with self._changed:
            self._jobs[job_id] = _Beat(cancel=cancel, beaten_at=now, written_at=now)
            self._changed.notify_all()  # an idle heartbeat thread waits for a job without a timeout
            if self._thread is None or not self._thread.is_alive():
                self._stopping = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stopping,), name=f"{self._worker_id}-heartbeat", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._changed:
                self._jobs.pop(job_id, None)

    def progress(self, job_id: str, step: int, total_steps: int) -> None:
        """Note a job's step; the heartbeat thread writes it (no database work in the caller's thread),
        at most every ``progress_interval``, the first time once the job has run that long."""
        beat = self._jobs.get(job_id)
        if beat is not None:
            beat.progress = (step, total_steps)

    def stop(self, timeout: float) -> None:
        with self._changed:
            thread, self._thread = self._thread, None
            self._stopping.set()
            self._changed.notify_all()
        if thread is not None:
            thread.join(timeout)

    def _run(self, stopping: threading.Event) -> None:
        tick = min(self._interval, self._progress_interval)
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._jobs) or stopping.is_set())  # idle: no wake-ups
                if stopping.is_set():
                    return
                jobs = list(self._jobs.items())
            for job_id, beat in jobs:
                self._beat(job_id, beat, time.monotonic())
            with self._changed:
                self._changed.wait_for(stopping.is_set, timeout=tick)

    def _beat(self, job_id: str, beat: _Beat, now: float) -> None:
        progress = beat.progress
        write_progress = (  # written_at starts as the job's start
            progress is not None and progress != beat.written and now - beat.written_at >= self._progress_interval
        )
        if not write_progress and now - beat.beaten_at < self._interval:
            return
        step, total = progress if write_progress and progress is not None else (None, None)
        try:
            lost = self._queue.heartbeat(job_id, self._worker_id, step=step, total_steps=total)
        except Exception:  # a database hiccup: the next beat tries again, well inside the timeout
            logger.exception("heartbeat of job %s failed", job_id)
            return
        beat.beaten_at = now
        if write_progress:
            beat.written, beat.written_at = progress, now
        if lost:
            beat.cancel.cancel()
