# syntax=docker/dockerfile:1
# One image for every role: `fedirelay serve` (default), `fedirelay worker`,
# `fedirelay migrate`. Settings come from FEDIRELAY_* variables at run time;
# nothing secret is baked in. Kubernetes probes replace a HEALTHCHECK.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler only for dependencies that ship no wheel for this platform; it
# stays in this stage. Not pinned: Debian drops superseded versions from its
# archive, and this stage leaves nothing in the image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/fedirelay
WORKDIR /src
COPY pyproject.toml README.md ./
COPY federation ./federation
COPY service ./service
COPY workers ./workers
RUN /opt/fedirelay/bin/pip install . \
    && /opt/fedirelay/bin/python -m compileall -q /opt/fedirelay

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/fedirelay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FEDIRELAY_LISTEN_HOST=0.0.0.0 \
    FEDIRELAY_LISTEN_PORT=8000 \
    FEDIRELAY_DATA_DIR=/var/lib/fedirelay \
    FEDIRELAY_LOG_FORMAT=json
# --no-log-init: a high uid would otherwise grow a huge sparse lastlog.
RUN groupadd --gid 10001 fedirelay \
    && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/fedirelay \
       --no-create-home --shell /usr/sbin/nologin fedirelay \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/fedirelay
COPY --from=build /opt/fedirelay /opt/fedirelay
WORKDIR /var/lib/fedirelay
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["fedirelay"]
CMD ["serve"]
