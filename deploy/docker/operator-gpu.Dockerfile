# syntax=docker/dockerfile:1
# Built-in ONNX operators on an NVIDIA GPU: ONNX Runtime's CUDA build on a CUDA + cuDNN base.
# The runtime opens every model on the CUDA execution provider when it is available (see
# src/phantoscope/zoo/runtime.py), so the same commands serve on the GPU. Run with the NVIDIA
# container toolkit: `docker run --gpus all ...`. Models are exported with torch in the
# `export` stage, as in operator.Dockerfile; no later stage has torch.
# Build from the repository root:
#   docker build -f deploy/docker/operator-gpu.Dockerfile -t phantoscope/operator-gpu .
# CUDA_IMAGE must match what ONNXRUNTIME_GPU was built for (its release notes name the CUDA
# and cuDNN versions).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${PYTHON_IMAGE} AS export
ARG PIP_EXTRA_INDEX_URL
ARG OPERATORS=efficientnet-lite0-encoder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[export]"
RUN for name in $OPERATORS; do \
        PHANTOSCOPE_MODELS=/models python -c \
            "import sys; from phantoscope.cli.operator_loader import load_operator; load_operator(sys.argv[1]).load()" \
            "$name" || exit 1; \
    done

FROM ${CUDA_IMAGE} AS build
ARG ONNXRUNTIME_GPU=onnxruntime-gpu>=1.20
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Both wheels install the module `onnxruntime`: keep only the CUDA one.
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall -y onnxruntime \
    && /opt/venv/bin/pip install "$ONNXRUNTIME_GPU"

FROM ${CUDA_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home phantoscope
COPY --from=build /opt/venv /opt/venv
COPY --from=export /models /opt/phantoscope/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PHANTOSCOPE_MODELS=/opt/phantoscope/models \
    PHANTOSCOPE_HOST=0.0.0.0 \
    OP_ENDPOINT=127.0.0.1:50001
USER phantoscope
EXPOSE 50001
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 \
    CMD phantoscope operator test -e "127.0.0.1:${OP_ENDPOINT##*:}" --wait 10 --timeout 10
ENTRYPOINT ["phantoscope", "operator", "serve"]
CMD ["efficientnet-lite0-encoder"]
