# The HTTP service (`ingest serve`, docs/service.md) for Cloud Run. Build it from the
# repository root (templates/deploy_service.sh does, with Cloud Build):
#
#   docker build -f templates/service.Dockerfile -t IMAGE .
#
# Not built on the project's machines (they have no Docker engine):
# tests/service/test_deploy.py checks what it copies and runs its command outside it.

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml setup.py README.md ./
# The service imports the domain and the ingest command; pipelines and transforms come
# along because `pip install .` packages them all (they are not run here).
COPY domain domain
COPY ingest ingest
COPY service service
COPY pipelines pipelines
COPY transforms transforms
# The example catalog, so the image starts without one given (INGEST_CATALOG).
COPY examples examples

RUN pip install --no-cache-dir . && rm -rf /root/.cache

# Not root: the service writes nothing to disk.
RUN useradd --system --uid 10001 --home-dir /app ingest
USER 10001

# deploy_service.sh sets these; the defaults are the local stack's names. Cloud Run sets
# PORT. It sends SIGTERM and kills 10 s later, so requests in flight get 8 s to finish.
ENV INGEST_CATALOG=/app/examples/catalog.yaml \
    INGEST_TOPIC=ingest-input \
    INGEST_INSTANCE=ingest-instance \
    INGEST_TABLE=profiles \
    INGEST_SHUTDOWN_TIMEOUT=8 \
    PORT=8080
EXPOSE 8080

# Shell form, for the variables; `exec` makes ingest PID 1, so SIGTERM reaches it.
CMD exec ingest serve --host 0.0.0.0 --port "$PORT" --catalog "$INGEST_CATALOG" --topic "$INGEST_TOPIC" --instance "$INGEST_INSTANCE" --table "$INGEST_TABLE" --shutdown-timeout "$INGEST_SHUTDOWN_TIMEOUT"
