# syntax=docker/dockerfile:1
# Built-in ONNX operators on CPU. The models are exported with torch in the `export` stage;
# the runtime stage has ONNX Runtime and no torch.
# Build from the repository root:
#   docker build -f deploy/docker/operator.Dockerfile -t phantoscope/operator .
# OPERATORS (space-separated built-in names) picks the models baked in; serve another one of
# them by naming it as the container's command (`docker run IMAGE mobilenet-v2-encoder`).
# PIP_EXTRA_INDEX_URL may name PyTorch's CPU wheel index, to download a smaller torch.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS export
ARG PIP_EXTRA_INDEX_URL
ARG OPERATORS=efficientnet-lite0-encoder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[export]"
# Loading a built-in operator exports its model (and quantises it, for -int8) into the cache.
RUN for name in $OPERATORS; do \
        PHANTOSCOPE_MODELS=/models python -c \
            "import sys; from phantoscope.cli.operator_loader import load_operator; load_operator(sys.argv[1]).load()" \
            "$name" || exit 1; \
    done

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install .

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --no-create-home phantoscope
COPY --from=build /opt/venv /opt/venv
COPY --from=export /models /opt/phantoscope/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PHANTOSCOPE_MODELS=/opt/phantoscope/models \
    PHANTOSCOPE_HOST=0.0.0.0 \
    OP_ENDPOINT=127.0.0.1:50001
USER phantoscope
EXPOSE 50001
# Identity, health and one execute on a sample photo, on the port of OP_ENDPOINT.
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 \
    CMD phantoscope operator test -e "127.0.0.1:${OP_ENDPOINT##*:}" --wait 10 --timeout 10
ENTRYPOINT ["phantoscope", "operator", "serve"]
CMD ["efficientnet-lite0-encoder"]
