# syntax=docker/dockerfile:1
# The Phantoscope API server (`phantoscope api`), without any operator.
# Build from the repository root:  docker build -f deploy/docker/api.Dockerfile -t phantoscope/api .
# Stores come from PHANTOSCOPE_VECTORS / PHANTOSCOPE_META / PHANTOSCOPE_OBJECTS (docs/deploy.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install .

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/phantoscope --create-home \
        phantoscope
COPY --from=build /opt/venv /opt/venv
COPY deploy/register_defaults.py /opt/phantoscope/register_defaults.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PHANTOSCOPE_HOME=/var/lib/phantoscope \
    PHANTOSCOPE_HOST=0.0.0.0 \
    PHANTOSCOPE_PORT=5000
USER phantoscope
WORKDIR /var/lib/phantoscope
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PHANTOSCOPE_PORT', '5000'), timeout=4)"
CMD ["phantoscope", "api"]
