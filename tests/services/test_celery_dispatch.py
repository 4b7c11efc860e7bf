"""Celery dispatch: job ids through a real Redis broker, rows claimed by id, each job run once.

The multi-process test runs two ``limner worker`` processes (Celery, ``--pool solo``) on loopback
against the Redis at 127.0.0.1:6379; it skips when Redis is absent and fails under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from limner.config import Settings
from limner.db.models import Image, Job, JobStatus, Role
from limner.engines.local.engine import LocalEngine
from limner.services.container import Services, build_services
from tests.services.conftest import require

REDIS_URL = os.environ.get("LIMNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
QUEUES = ("limner.generate", "limner.train")


def _redis_client() -> object | None:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


def test_celery_settings_guard_long_jobs() -> None:
    pytest.importorskip("celery")
    from limner.services.jobs.celery_app import celery_config, create_celery_app

    settings = Settings(broker_url="redis://127.0.0.1:6379/0", _env_file=None)  # type: ignore[call-arg]
    config = celery_config(settings)
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"]["visibility_timeout"] >= 24 * 3600
    app = create_celery_app(settings, run_job=lambda job_id: None)
    assert "limner.run_job" in app.tasks


def test_without_a_broker_celery_is_never_imported(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """No broker URL: jobs are stored and claimed from the table, and no Celery or Redis module loads."""
    code = f"""
import sys
from limner.config import Settings
from limner.core.jobs import GenerateJob
from limner.core.requests import GenerationRequest
from limner.db.models import Role
from limner.services.container import build_services
from limner.services.jobs.queue import NewJob
settings = Settings(data_dir={str(tmp_path)!r}, default_model={str(tiny_models["txt2img"])!r}, workers=0,
                    _env_file=None)
services = build_services(settings)
services.start()
with services.sessions() as session:
    user = services.users.create(session, "alone", "a long password", Role.USER)
    services.queue.enqueue(session, user, NewJob(GenerateJob(request=GenerationRequest(prompt="x"))))
assert services.queue.claim("w") is not None
services.stop()
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("celery", "kombu", "redis"))
assert not loaded, loaded
print("ok")
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("LIMNER_BROKER_URL", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


@pytest.fixture
def broker() -> Iterator[str]:
    """The loopback Redis, with limner's queues emptied (leftover ids would only be no-ops, but noise)."""
    client = _redis_client()
    require("Redis", client is not None, REDIS_URL)
    client.delete(*QUEUES, "unacked", "unacked_index")  # type: ignore[union-attr]
    yield REDIS_URL
    client.delete(*QUEUES, "unacked", "unacked_index")  # type: ignore[union-attr]


def worker_env(data_dir: Path, model: Path, broker_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "LIMNER_DATA_DIR": str(data_dir),
        "LIMNER_DEFAULT_MODEL": str(model),
        "LIMNER_DEVICE": "cpu",
        "LIMNER_BROKER_URL": broker_url,
        "LIMNER_JOB_HEARTBEAT_TIMEOUT_SECONDS": "5",
        "LIMNER_JOB_HEARTBEAT_INTERVAL_SECONDS": "1",
        "LIMNER_JOB_RECOVER_INTERVAL_SECONDS": "1",
        "LIMNER_JOB_REDISPATCH_SECONDS": "30",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def start_workers(env: dict[str, str], logs: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``limner worker`` processes and wait until each says Celery is ready."""
    workers = []
    for index in range(count):
        log = logs / f"worker-{index}.log"
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "limner", "worker"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
            )
        )
    deadline = time.monotonic() + 120
    for index, process in enumerate(workers):
        log = logs / f"worker-{index}.log"
        while " ready." not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_all_finished(services: Services, ids: list[str], timeout: float) -> list[Job]:
    deadline = time.monotonic() + timeout
    while True:
        with services.sessions() as session:
            jobs = list(session.scalars(sa.select(Job).where(Job.id.in_(ids))))
        if all(JobStatus(job.status).finished for job in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.2)


@pytest.fixture
def api_side(tmp_path: Path, tiny_models: dict[str, Path], broker: str, engine: LocalEngine) -> Iterator[Services]:
    """The API's services with the broker configured (it dispatches, it runs nothing)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        default_model=str(tiny_models["txt2img"]),
        device="cpu",
        broker_url=broker,
        workers=0,
        max_queue_size=1000,
        jobs_per_minute=1000,
        _env_file=None,  # type: ignore[call-arg]
    )
    services = build_services(settings, engine=engine)
    services.start()
    yield services
    services.stop()


def submit(services: Services, count: int, steps: int = 1, size: int = 64) -> list[str]:
    with services.sessions() as session:
        user = services.users.create(session, f"u{time.monotonic_ns()}", "a long password", Role.ADMIN)
        fields = {"steps": steps, "width": size, "height": size}
        return [
            services.generation_jobs.queue(session, user, {"prompt": f"dot {i}", "seed": i, **fields})[0].id
            for i in range(count)
        ]


def test_two_celery_workers_share_jobs_each_run_once_and_survive_a_kill(
    api_side: Services, tiny_models: dict[str, Path]
) -> None:
    """Two `limner worker` processes on one broker.

    20 jobs, every message delivered twice: 20 runs, 20 images, both workers busy. A queued job
    whose message was lost is sent again by the workers' sweeper and runs. Then a long
    job's steps reach this (API) process through Redis events, and kill -9 of the worker running
    it: the other worker runs it within the heartbeat timeout, once.
    """
    from limner.services.jobs.celery_app import CeleryDispatcher, create_celery_app

    data_dir = api_side.settings.data_dir
    env = worker_env(data_dir, tiny_models["txt2img"], api_side.settings.broker_url or "")
    booting = time.monotonic()
    workers = start_workers(env, data_dir, 2)
    print(f"workers ready in {time.monotonic() - booting:.1f}s")
    try:
        ids = submit(api_side, 20)
        duplicate = CeleryDispatcher(create_celery_app(api_side.settings))
        for job_id in ids:  # a redelivery of every message: must change nothing
            duplicate(job_id, "generate")
        started = time.monotonic()
        jobs = wait_all_finished(api_side, ids, 120)
        print(f"20 jobs on 2 Celery workers in {time.monotonic() - started:.1f}s")
        client = _redis_client()
        deadline = time.monotonic() + 30
        while any(client.llen(queue) for queue in QUEUES) or client.hlen("unacked"):  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "duplicate messages were not consumed"
            time.sleep(0.2)

        lost = lost_message_job(api_side, jobs[0])  # queued in the table, its message gone with the broker
        started = time.monotonic()
        [recovered] = wait_all_finished(api_side, [lost], 30)
        print(f"a job whose message was lost ran {time.monotonic() - started:.1f}s later")

        # Long enough to be seen running with a step written (after its first second), then killed, on
        # a fast machine too: at 64 px its 150 steps ended before the first progress write (2026-11-29).
        [long_job] = submit(api_side, 1, steps=150, size=256)
        steps = asyncio.run(live_steps(api_side, long_job, 3))  # through Redis pub/sub, from the worker
        running = wait_running(api_side, long_job, 60)
        victim = workers[[_worker_id(data_dir, index) for index in range(2)].index(running.worker_id)]
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        [retried] = wait_all_finished(api_side, [long_job], 120)
        print(f"killed worker's job finished elsewhere {time.monotonic() - killed:.1f}s after the kill")
    finally:
        stopping = time.monotonic()
        stop_workers(workers)
        print(f"workers stopped in {time.monotonic() - stopping:.1f}s")
    assert [job.status for job in jobs] == ["succeeded"] * 20, [(job.status, job.error_message) for job in jobs]
    assert {job.attempts for job in jobs} == {1}
    assert len({job.worker_id for job in jobs}) == 2  # both processes took jobs
    assert (recovered.status, recovered.attempts) == ("succeeded", 1)
    assert len(steps) == 3
    assert steps == sorted(steps)
    assert (retried.status, retried.attempts) == ("succeeded", 2), retried.error_message
    assert retried.worker_id != running.worker_id
    with api_side.sessions() as session:
        images = list(session.scalars(sa.select(Image).where(Image.job_id.in_([*ids, lost, long_job]))))
    assert sorted(image.job_id for image in images) == sorted([*ids, lost, long_job])  # one image per job
    written = {path.stem for path in (data_dir / "files" / "images").glob("*.png")}
    assert written == {image.id for image in images}  # no second file for any job
    assert [process.returncode for process in workers if process is not victim] == [0]


def _worker_id(logs: Path, index: int) -> str:
    """The worker id a `limner worker` printed on start (its jobs' ``worker_id``)."""
    text = (logs / f"worker-{index}.log").read_text(errors="replace")
    return text.split("limner worker ", 1)[1].split(":", 1)[0]


def lost_message_job(services: Services, like: Job) -> str:
    """A job queued a minute ago whose broker message never arrived (a broker restart without persistence)."""
    with services.sessions() as session:
        job = Job(owner_id=like.owner_id, kind=like.kind, task=like.task, model=like.model, payload=like.payload,
                  total_steps=like.total_steps, created_at=datetime.now(UTC) - timedelta(minutes=1))  # fmt: skip
        session.add(job)
        session.commit()
        return job.id


async def live_steps(services: Services, job_id: str, count: int) -> list[int]:
    """The first ``count`` step numbers this (API) process's event bus hears of a job running elsewhere."""
    steps: list[int] = []
    async with services.events.subscribe(job_id) as events:
        while len(steps) < count:
            event = await asyncio.wait_for(events.get(), timeout=30)
            if event.get("step"):
                steps.append(event["step"])
    return steps


def wait_running(services: Services, job_id: str, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.sessions() as session:
            job = session.get(Job, job_id)
            if job is not None and job.status == "running" and job.step > 0:
                return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not start in {timeout}s")


AMQP_URL = os.environ.get("LIMNER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.mark.parametrize("broker_url", [REDIS_URL, AMQP_URL], ids=["redis", "rabbitmq"])
def test_messages_carry_only_the_job_id_on_the_queue_of_its_kind(broker_url: str) -> None:
    """Redis and RabbitMQ take the same settings: a train job's message is on limner.train, holding its id."""
    kombu = pytest.importorskip("kombu")
    from limner.services.jobs.celery_app import CeleryDispatcher, create_celery_app

    with kombu.Connection(broker_url, connect_timeout=2) as connection:
        try:
            connection.ensure_connection(max_retries=1)
            reachable = True
        except Exception:
            reachable = False
        require("RabbitMQ" if broker_url.startswith("amqp") else "Redis", reachable, broker_url)
        inbox = connection.SimpleQueue("limner.train")
        inbox.clear()
        settings = Settings(broker_url=broker_url, _env_file=None)  # type: ignore[call-arg]
        app = create_celery_app(settings)
        job_id = f"job-{time.monotonic_ns()}"
        CeleryDispatcher(app)(job_id, "train")
        message = inbox.get(timeout=10)
        args, kwargs, _ = message.decode()
        message.ack()
        inbox.close()
        app.close()
    assert (message.headers["task"], args, kwargs) == ("limner.run_job", [job_id], {})


def test_generations_of_a_routed_model_go_to_its_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIMNER_MODEL_QUEUES sends one model's generations to the workers that listen for it; training stays put."""
    pytest.importorskip("celery")
    from limner.services.jobs.celery_app import CeleryDispatcher, create_celery_app

    monkeypatch.setenv("LIMNER_MODEL_QUEUES", '{"sdxl-base": "limner.gpu48"}')
    settings = Settings(broker_url="redis://127.0.0.1:6379/15", _env_file=None)  # type: ignore[call-arg]
    dispatcher = CeleryDispatcher(create_celery_app(settings), settings.model_queues)
    assert dispatcher.queue_for("generate", "sdxl-base") == "limner.gpu48"
    assert dispatcher.queue_for("generate", "limner-tiny") == "limner.generate"
    assert dispatcher.queue_for("generate", None) == "limner.generate"
    assert dispatcher.queue_for("train", "sdxl-base") == "limner.train"
