"""Settings: one pydantic-settings class, read from ``LIMNER_*`` environment variables and ``.env``.

Why one class, read in entry points and passed down: no module reads the environment on its
own, so a test or a second server in the same process can run with different settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from limner.core.providers import OPENAI, REPLICATE, STABILITY, RemoteProvider
from limner.core.requests import MAX_IMAGES_PER_REQUEST, RequestLimits

DeviceSetting = Literal["auto", "cpu", "cuda", "mps"]
DtypeSetting = Literal["auto", "float32", "float16", "bfloat16"]


class Settings(BaseSettings):
    """Deployment settings. Every field can be set as ``LIMNER_<FIELD>`` (e.g. ``LIMNER_DEVICE=cpu``)."""

    model_config = SettingsConfigDict(env_prefix="LIMNER_", env_file=".env", extra="ignore", populate_by_name=True)

    default_model: str = Field(
        default="limner-tiny",
        description="Model used when a request names none: a built-in name, hub id, folder or .safetensors file.",
    )
    default_edit_model: str = Field(
        default="limner-tiny-edit",
        description="Model used by instruction edits that name none (an InstructPix2Pix-class model); the "
        "built-in limner-tiny-edit needs no download.",
    )
    output_dir: Path = Path("output")
    png_compress_level: int = Field(
        default=1,
        ge=0,
        le=9,
        description="zlib level of the PNGs written (gallery, CLI, batches): 1 encodes 3-4x faster than 6 (Pillow's "
        "default) for files about 10% larger; every level is lossless.",
    )
    device: DeviceSetting = "auto"
    dtype: DtypeSetting = "auto"
    max_loaded_models: int = Field(default=2, ge=1, le=64)
    max_pixels: int = Field(default=2048 * 2048, ge=64 * 64)
    max_steps: int = Field(default=150, ge=1)
    max_images_per_request: int = Field(default=MAX_IMAGES_PER_REQUEST, ge=1, le=MAX_IMAGES_PER_REQUEST)
    max_input_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    presets_file: Path | None = Field(
        default=None, description="A TOML file of extra presets; they override built-ins of the same name."
    )
    styles_file: Path | None = Field(default=None, description="A TOML file of extra styles (see data/styles.toml).")
    wildcards_dir: Path | None = Field(
        default=None,
        description="A folder of wildcard files (name.txt, one choice a line) for __name__ in prompts; "
        "they win over limner's own of the same name.",
    )
    hub_model_allowlist: list[str] | None = Field(
        default=None,
        description="Hub repos ('owner/name') non-admin API users may name; unset: any hub id. "
        "Registered and built-in models are always allowed; server paths never are for non-admins.",
    )
    model_defaults_file: Path | None = Field(
        default=None, description="A TOML file of per-model defaults (see data/model_defaults.toml) over the built-ins."
    )
    ip_adapter: str | None = Field(
        default=None,
        description="IP-Adapter for character requests (hub 'owner/repo/sub/file.safetensors' or a local file); "
        "default: h94/IP-Adapter's SD 1.5 or SDXL adapter, chosen by the model.",
    )
    backend: Literal["auto", "torch", "openvino"] = Field(
        default="auto",
        description="How the UNet runs on the CPU: openvino (extra limner[openvino]), torch, or auto (OpenVINO "
        "when installed and the device is the CPU).",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Compute threads of each worker thread (torch and OpenVINO); default: the CPU cores divided "
        "by LIMNER_WORKERS, so concurrent jobs do not oversubscribe the cores.",
    )
    batch_max_size: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Most compatible jobs run as one pipeline call when several worker threads run at once "
        "(LIMNER_WORKERS > 1); 1 turns batching off.",
    )
    batch_wait_seconds: float = Field(
        default=0.05, ge=0, le=5, description="How long the first job of a batch waits for compatible ones."
    )
    decode: Literal["full", "fast"] = Field(
        default="full", description="fast: decode with a tiny autoencoder (TAESD family) unless a request says full."
    )
    tiny_vae: str | None = Field(
        default=None, description="The tiny autoencoder for fast decoding (hub id or folder); default: by family."
    )
    depth_model: str | None = Field(
        default=None,
        description="Depth estimator for depth controls (transformers depth-estimation model: hub id such as "
        "Intel/dpt-hybrid-midas, or a folder; safetensors only). Unset: depth controls take ready depth maps (none).",
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the UNet and VAE decoder of each loaded model (CUDA; the first run of each "
        "shape compiles, so the server warms the default model up at start).",
    )
    compile_backend: str = Field(default="inductor", description="torch.compile backend (inductor; eager for tests).")
    fuse_qkv: bool | None = Field(
        default=None,
        description="Fused QKV attention projections while no LoRA or IP-Adapter is active; default: on with CUDA.",
    )
    openvino_cache_dir: Path | None = Field(
        default=None, description="Where converted OpenVINO models are kept (default: ~/.cache/limner/openvino)."
    )
    openvino_precision: Literal["auto", "f32", "bf16"] = Field(
        default="auto",
        description="OpenVINO's compute precision: auto (the VAE decoder in bf16 on CPUs with bf16 units, the rest "
        "in f32: pictures within 1/255 of PyTorch's), f32 (every module) or bf16 (every module: an SD-sized UNet "
        "step about 3x faster again, pictures no longer within 1/255).",
    )
    hf_variant: str | None = Field(
        default=None, description="Weights variant to prefer when downloading (e.g. fp16 on CUDA)."
    )

    # The service (``limner serve``).
    env: Literal["development", "production"] = Field(
        default="development",
        description="production refuses to start without a strong LIMNER_JWT_SECRET; development generates one.",
    )
    data_dir: Path = Field(default=Path("limner-data"), description="Database file, images, generated secrets.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite in data_dir.")
    files_url: str | None = Field(default=None, description="fsspec URL for image files; default: data_dir/files.")
    jwt_secret: SecretStr | None = None
    jwt_expiry_minutes: int = Field(default=30, ge=1, le=24 * 60)
    registration_open: bool = Field(default=False, description="Initial value; admins switch it through the API.")
    admin_username: str | None = Field(default=None, description="Creates this admin on first start if no user exists.")
    admin_password: SecretStr | None = None
    cli_user: str = Field(default="local", description="Owner of what CLI commands store (characters, imports).")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=0, le=16, description="In-process worker threads (0: API only).")
    external_workers: bool = Field(
        default=False,
        description="`limner worker` processes share this database: jobs left running are theirs to finish.",
    )
    max_queue_size: int = Field(default=200, ge=1)
    jobs_per_minute: int = Field(default=60, ge=1, description="Per-user job creation rate limit.")
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    login_max_failures_per_ip: int = Field(
        default=20, ge=1, description="Failed logins one client address may make per window, over all usernames."
    )
    job_max_attempts: int = Field(default=2, ge=1, description="Runs of a job before a dead worker fails it.")
    job_heartbeat_timeout_seconds: int = Field(
        default=20,
        ge=5,
        description="A running job whose heartbeat is older than this is taken back from its (dead) worker; "
        "with the sweep interval it bounds how soon another worker retries it.",
    )
    job_heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often a worker's heartbeat thread writes each running job's heartbeat."
    )
    job_recover_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often each worker sweeps for jobs of workers that stopped heart-beating."
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis://host:6379/0 or amqp://user:pass@host:5672//): jobs are dispatched "
        "through it to `limner worker` processes; unset: the in-process worker polls the table.",
    )
    events_url: str | None = Field(
        default=None,
        description="Redis URL for job progress events across processes; default: LIMNER_BROKER_URL when it "
        "is redis://, else in-process events only.",
    )
    model_queues: dict[str, str] = Field(
        default_factory=dict,
        description="With a broker: generations of these models go to their own Celery queue, JSON "
        '{"model name": "queue"} (workers that keep the model loaded, or a GPU class, listen there).',
    )
    job_redispatch_seconds: int = Field(
        default=300,
        ge=5,
        description="With a broker: a job still queued this long after its last message is sent again (a broker "
        "that lost messages loses no job; a duplicate message is a no-op).",
    )
    celery_visibility_timeout_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="Redis broker: seconds before an unacknowledged job message is delivered again. Must exceed "
        "the longest job (a redelivery of a job still running is a no-op, but a wasted message).",
    )
    max_request_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    sync_wait_seconds: int = Field(default=600, ge=1, description="How long sync endpoints wait for a job.")
    webhook_timeout_seconds: float = 10.0
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks reach loopback, private, link-local and metadata addresses (a trusted LAN only).",
    )
    public_url: str | None = Field(
        default=None,
        description="The server's public base URL (e.g. https://limner.example.com) for absolute links it hands "
        "out; default: the base URL of each request.",
    )
    signed_url_seconds: int = Field(
        default=3600, ge=60, le=7 * 24 * 3600, description="Lifetime of signed image URLs (response_format=url)."
    )

    # Remote providers and the prompt LLM. Keys use the providers' own variable names (no LIMNER_
    # prefix), as their official clients do; base URLs are settable for proxies and tests. Variable
    # names and defaults come from the provider table (a test checks every provider has its fields).
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=OPENAI.key_variable)
    openai_base_url: str = Field(default=OPENAI.default_base_url, validation_alias=OPENAI.base_url_variable)
    replicate_api_token: SecretStr | None = Field(default=None, validation_alias=REPLICATE.key_variable)
    replicate_base_url: str = Field(default=REPLICATE.default_base_url, validation_alias=REPLICATE.base_url_variable)
    stability_api_key: SecretStr | None = Field(default=None, validation_alias=STABILITY.key_variable)
    stability_base_url: str = Field(default=STABILITY.default_base_url, validation_alias=STABILITY.base_url_variable)
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible chat server for prompt ideas (OpenAI, Ollama, vLLM ...)."
    )
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'limner.db').resolve()}"

    def resolved_files_url(self) -> str:
        return self.files_url or str((self.data_dir / "files").resolve())

    def provider_key(self, provider: RemoteProvider) -> SecretStr | None:
        """The key of a remote provider, read from the field the provider table names."""
        key: SecretStr | None = getattr(self, provider.key_setting)
        return key

    def provider_base_url(self, provider: RemoteProvider) -> str:
        base_url: str = getattr(self, provider.base_url_setting)
        return base_url

    def has_store(self) -> bool:
        """True when this installation has a database (a CLI lookup must not create one)."""
        return self.database_url is not None or (self.data_dir / "limner.db").is_file()

    def compute_threads(self) -> int:
        """Threads for one job's math: the cores shared by the worker threads of this process."""
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))

    def request_limits(self) -> RequestLimits:
        return RequestLimits(
            max_pixels=self.max_pixels, max_steps=self.max_steps, max_images=self.max_images_per_request
        )
