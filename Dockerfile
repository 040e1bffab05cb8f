# syntax=docker/dockerfile:1
# Two stages: the builder turns the project and every dependency into wheels (with a
# compiler at hand for any dependency that ships only as source); the runtime installs
# those wheels into a slim image that has no compiler and runs as an unprivileged user.
#
#   docker build -t banking .
#   docker run --rm --env-file deploy/.env.prod banking banking migrate
#   docker run --env-file deploy/.env.prod -p 8000:8000 banking
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    APP_ENV=prod
RUN groupadd --system --gid 10001 banking \
    && useradd --system --uid 10001 --gid banking --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin banking
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels banking
WORKDIR /app
RUN mkdir -p /app/var && chown banking:banking /app/var
USER banking:banking
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v1/health/ready', timeout=4).status == 200 else 1)"]
# Migrations are an explicit step: `docker run ... banking migrate` (compose: the migrate service).
CMD ["banking", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
