# The chaos-service image: the engine, the LLM stub, the sandbox chat back-end, the control
# plane and `chaos-service run`, with the built-in experiments in /app/experiments.
# docker-compose.chaos.yml builds it once and runs one command of it per service.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
COPY pyproject.toml README.md ./
COPY chaos_service ./chaos_service
RUN pip install . && rm -rf build chaos_service.egg-info
COPY experiments ./experiments

# A fixed, unprivileged user. /data (the control plane's store) and /reports (run outputs)
# are created here, owned by it, so that volumes mounted there start out writable.
# The control service adds the Docker socket's group to this user for container faults
# (see docs/deployment.md); every other service needs no privilege at all.
RUN groupadd --system --gid 10001 chaos \
 && useradd --system --uid 10001 --gid chaos --create-home --home-dir /home/chaos chaos \
 && mkdir -p /data /reports \
 && chown chaos:chaos /data /reports
USER chaos

EXPOSE 8474 8000
ENTRYPOINT []
CMD ["chaos-service", "engine", "-host", "0.0.0.0", "-port", "8474"]
