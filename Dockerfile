# syntax=docker/dockerfile:1
# gitops-bot image: docker build -t registry.example.com/gitops-bot:0.6.0 .
# Kubernetes manifests: deploy/ (docs/deploy.md). tests/test_dockerfile.py checks this file.

# Both stages use the same Python: the virtualenv copied below points at its interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: the virtualenv is made here. Anything a dependency would need to compile stays
# in this stage; the runtime stage copies only the finished /opt/venv.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY services ./services
COPY sandbox ./sandbox
RUN pip install . \
    && pip uninstall --yes pip setuptools

# Runtime stage: slim, no compilers, non-root, git for the Git cache, tini as PID 1.
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="gitops-bot" \
      org.opencontainers.image.description="Slack ChatOps for GitOps with Argo CD and Flux" \
      org.opencontainers.image.licenses="Apache-2.0"
# git (+ openssh-client for ssh:// repositories): promotions, Flux diff / history / rollback.
# tini: forwards SIGTERM to the bot and reaps the git / ssh processes it leaves behind.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git openssh-client ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gitops \
    && useradd --system --uid 10001 --gid gitops --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin gitops \
    && mkdir -p /data /config \
    && chown gitops:gitops /data
COPY --from=build /opt/venv /opt/venv
# /data: the only writable directory (SQLite audit database, Git cache, HOME for git). Set
# audit.database and git.cache_dir to absolute paths under it (deploy/base/gitops-bot.yaml).
# /config: where the configuration file is mounted read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GITOPS_BOT_CONFIG=/config/gitops-bot.yaml \
    HOME=/data
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
# server.port: /healthz, /readyz, /metrics, and /slack/events in HTTP mode.
EXPOSE 3000
# On SIGTERM the bot answers 503 to new commands, lets running ones finish for up to
# server.shutdown_timeout (30s), records the rest as interrupted and closes its database.
# Give it longer than that before a SIGKILL: docker stop --time 45, or the pod's
# terminationGracePeriodSeconds (45 in deploy/base).
STOPSIGNAL SIGTERM
# Docker only; Kubernetes uses the Deployment's probes instead.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["/usr/bin/tini", "--", "gitops-bot"]
CMD ["run"]
