# syntax=docker/dockerfile:1
#
# One image, several processes (DESIGN.md, Processes):
#   docker run IMAGE                            the api (default command)
#   docker run IMAGE procore-hooks worker       an arq worker
#   docker run IMAGE procore-hooks migrate      alembic upgrade head, once per deploy
#
# The image defaults to APP_ENV=production: it refuses to start with missing or placeholder
# secrets, naming the variable. docker-compose.yml runs it in development.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtualenv with the dependencies and the project -------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /app

# Dependencies first, read from pyproject.toml itself, so this layer survives code changes.
# Every dependency ships wheels for linux/amd64 and arm64: no compiler is needed.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt

# Then the project, as a regular (non-editable) install: the packages, the migrations and
# their template all ship inside it, so `procore-hooks migrate` needs nothing beside the venv.
COPY README.md ./
COPY migrations ./migrations
COPY workers ./workers
COPY app ./app
RUN pip install --no-deps .

# --- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="procore-hooks" \
      org.opencontainers.image.description="Install-aware Procore webhook receiver and background sync service" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    APP_ENV=production

RUN groupadd --system --gid 10001 procore \
    && useradd --system --uid 10001 --gid procore --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin procore

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv

# Numeric, so orchestrators can verify runAsNonRoot without resolving names.
USER 10001:10001

# 8000: the api. 9100: a worker's Prometheus metrics (WORKER_METRICS_PORT).
EXPOSE 8000 9100

# uvicorn drains in-flight requests on SIGTERM; an arq worker finishes in-flight jobs.
STOPSIGNAL SIGTERM

# Liveness of the api (slim has no curl). Workers override this with `procore-hooks worker
# --check`, and one-shot migrate runs disable it (see docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=3)"]

CMD ["procore-hooks", "api", "--host", "0.0.0.0", "--port", "8000"]
