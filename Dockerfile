# Neuron's container image: the locked runtime environment (uv.lock, no dev tools) and the source, run as a
# non-root user. One image for every role (docs/operations.md):
#   user code (default):  dagster api grpc -h 0.0.0.0 -p 4000 -m pipelines.definitions -a defs
#   webserver:            dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/workspace.yaml
#   daemon:               dagster-daemon run -w /opt/dagster/workspace.yaml
#   push collector:       neuron collect --host 0.0.0.0 --port 8710 --collector-id <a fixed id>
# The base image is pinned by tag. A deployment should pin it by digest as well
# (python:3.11.14-slim-bookworm@sha256:<digest>, from `docker buildx imagetools inspect <tag>`).
# No secret is built in: keys and passwords come from the environment at run time (deploy/compose.yaml,
# deploy/helm/values.yaml).

FROM python:3.11.14-slim-bookworm AS builder

# the Makefile's UV_VERSION
ARG UV_VERSION=0.13.8
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /app
# the dependencies first: this layer is rebuilt only when the lock changes
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# then the source, and Neuron itself (editable: the venv points at /app, where the runtime stage puts the
# source too; pipelines/cli.py finds deploy/ beside the packages)
COPY README.md workspace.yaml ./
COPY deploy/dagster.yaml deploy/dagster.local.yaml ./deploy/
COPY kernel ./kernel
COPY quality ./quality
COPY connectors ./connectors
COPY assets ./assets
COPY exports ./exports
COPY warehouse ./warehouse
COPY pipelines ./pipelines
COPY simulator ./simulator
RUN uv sync --frozen --no-dev \
    && /app/.venv/bin/python -m compileall -q --invalidation-mode checked-hash \
       kernel quality connectors assets exports warehouse pipelines simulator

FROM python:3.11.14-slim-bookworm AS runtime

# a fixed uid/gid, so volumes, Kubernetes' runAsUser and file ownership on the host agree
ARG NEURON_UID=10001
# the code version written into every export manifest (exports/filedrop.py); set it at build time, e.g.
# --build-arg NEURON_CODE_VERSION="$(git describe --always --dirty)"; empty: the package version
ARG NEURON_CODE_VERSION=""

RUN groupadd --gid "${NEURON_UID}" neuron \
    && useradd --uid "${NEURON_UID}" --gid neuron --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin neuron \
    && mkdir -p /opt/dagster/dagster_home /var/lib/neuron \
    && chown neuron:neuron /opt/dagster/dagster_home /var/lib/neuron \
    && chmod 0750 /opt/dagster/dagster_home /var/lib/neuron

# the venv and the source only; owned by root, so the running user cannot change its own code
COPY --from=builder /app /app

WORKDIR /app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NEURON_MODE=production \
    NEURON_DATA_DIR=/var/lib/neuron \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    NEURON_CODE_VERSION=${NEURON_CODE_VERSION}

USER ${NEURON_UID}:${NEURON_UID}

# 3000 dagster-webserver, 4000 the user-code gRPC server, 8710 the push collector
EXPOSE 3000 4000 8710

# the probe of the default role (the gRPC server); compose and Helm set each other role's own probe
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]

CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "pipelines.definitions", "-a", "defs"]
