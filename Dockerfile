# syntax=docker/dockerfile:1
# limner: one image for the API (`limner serve`) and the workers (`limner worker`).
#
#   docker build -t limner .                      # CPU image (the default target)
#   docker build --target cuda -t limner:cuda .   # CUDA wheels of torch; run with --gpus all
#
# The process runs as the non-root user `limner` (uid 10001). /data holds the SQLite database and
# files when no LIMNER_DATABASE_URL / LIMNER_FILES_URL is set; /cache holds downloaded model
# weights (HF_HOME): mount both as volumes so restarts download nothing again.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/cache/huggingface \
    LIMNER_DATA_DIR=/data \
    LIMNER_HOST=0.0.0.0 \
    LIMNER_PORT=8000
RUN groupadd --system --gid 10001 limner \
    && useradd --system --uid 10001 --gid limner --create-home --home-dir /home/limner limner \
    && mkdir -p /data /cache/huggingface /app \
    && chown -R limner:limner /data /cache /app
WORKDIR /app

# torch first, from the index of the wanted build, so the project's install below reuses it.
FROM base AS torch-cpu
ARG TORCH_VERSION=2.13.0
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"

FROM base AS torch-cuda
ARG TORCH_VERSION=2.13.0
ARG CUDA_INDEX=cu126
RUN pip install --no-cache-dir --index-url "https://download.pytorch.org/whl/${CUDA_INDEX}" "torch==${TORCH_VERSION}"

# The CUDA image: the NVIDIA driver comes from the host (NVIDIA Container Toolkit); the CUDA
# runtime libraries come with torch's wheels.
FROM torch-cuda AS cuda
COPY --chown=limner:limner pyproject.toml README.md ./
COPY --chown=limner:limner src ./src
# The project itself: versions come from pyproject.toml (DL3013 asks for pins on named packages).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[celery,s3]" \
    && pip install --no-cache-dir --no-deps "spandrel>=0.4,<0.5"
USER 10001:10001
VOLUME ["/data", "/cache"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('LIMNER_PORT', '8000')}/healthz\", timeout=4)"]
CMD ["limner", "serve"]

# The CPU image (last stage: what a plain `docker build` makes).
FROM torch-cpu AS cpu
COPY --chown=limner:limner pyproject.toml README.md ./
COPY --chown=limner:limner src ./src
# The project itself: versions come from pyproject.toml (DL3013 asks for pins on named packages).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[celery,s3]" \
    && pip install --no-cache-dir --no-deps "spandrel>=0.4,<0.5"
USER 10001:10001
VOLUME ["/data", "/cache"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('LIMNER_PORT', '8000')}/healthz\", timeout=4)"]
CMD ["limner", "serve"]
