"""The HTTP service: Adobe's streaming inlet and entities API over the pipeline's own
parser, catalog, topic and profile table (docs/service.md). FastAPI on uvicorn."""

import dataclasses
import gc
import json
import logging
import pathlib
import signal

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from domain.connections import CONNECTION_ATTRIBUTE
from domain.parsing import RecordParser
from domain.records import Record
from ingest.clients import open_table
from service import inlet, profiles
from service.http import BoundedHttpToolsProtocol
from service.inlet import Problem
from service.publisher import InletPublisher, PublishUnavailable

logger = logging.getLogger("ingest.serve")
PREFLIGHT_MAX_AGE_SECONDS = 600
ALLOWED_HEADERS = "Content-Type, Authorization, x-api-key"
MESSAGE_BODY = {"content": {"application/json": {"schema": {"type": "object"}}}}
BROWSER_CLIENT = pathlib.Path(__file__).parent / "static" / "ingest.js"
BROWSER_CLIENT_URL = "/static/ingest.js"  # stable: pages load it from here
BROWSER_CLIENT_HEADERS = {
    "Cache-Control": "public, max-age=3600",
    # any origin may load it, with or without crossorigin= (and subresource integrity)
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
}
DESCRIPTION = (
    "Adobe-compatible streaming inlet (`POST /collection/{connectionId}`) and entities API "
    "(`GET /access/entities`) in front of the streaming pipeline. Reference: docs/service.md."
)


@dataclasses.dataclass
class ServiceConfig:
    catalog: object  # domain.catalog.Catalog
    topic_path: str
    project: str
    instance: str
    table: str
    publish_timeout: float = 10.0
    body_timeout: float = 10.0


def create_app(config):
    state = _State(config)
    app = FastAPI(
        title="streaming-ingest service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=state.lifespan,
    )
    app.state.connections = state.connections

    @app.exception_handler(Problem)
    async def problem_answer(request, problem):
        return _json(problem.body(), problem.status, request, problem.headers)

    @app.get("/health", summary="liveness: the service is up")
    async def health():
        return {"status": "ok"}

    browser_client = BROWSER_CLIENT.read_bytes()

    @app.get(BROWSER_CLIENT_URL, summary="the browser client (docs/service.md)")
    async def browser_client_script():
        return Response(
            browser_client,
            media_type="text/javascript; charset=utf-8",
            headers=BROWSER_CLIENT_HEADERS,
        )

    @app.post(
        "/collection/{connection_id}",
        summary="stream one message in Adobe's envelope",
        openapi_extra={"requestBody": MESSAGE_BODY},
        responses={400: {}, 401: {}, 403: {}, 404: {}, 413: {}, 415: {}, 503: {}},
    )
    async def collect(connection_id: str, request: Request, syncValidation: bool = False):  # noqa: N803
        received_ms = inlet.now_ms()
        connection = state.connection(connection_id, request)
        payload = await inlet.read_body(request, config.body_timeout)
        document = inlet.decode(payload)
        try:
            inlet.check_message(connection, document)
            if syncValidation:
                state.validate(connection, payload)
        except Problem as problem:
            raise inlet.about_message(connection, document, problem) from None
        [message_id] = await state.publish([payload], connection)
        if isinstance(message_id, Problem):
            raise message_id
        return _json(inlet.accepted(connection, message_id, received_ms), 200, request)

    @app.post(
        "/collection/batch/{connection_id}",
        summary='stream a batch: {"messages": [...]}, one answer per message (207)',
        openapi_extra={"requestBody": MESSAGE_BODY},
        status_code=207,
    )
    async def collect_batch(connection_id: str, request: Request, syncValidation: bool = False):  # noqa: N803
        received_ms = inlet.now_ms()
        connection = state.connection(connection_id, request)
        payload = await inlet.read_body(request, config.body_timeout)
        messages = inlet.batch_messages(inlet.decode(payload))
        answers, datas = [None] * len(messages), {}
        for index, message in enumerate(messages):
            try:
                inlet.check_message(connection, message)
                data = inlet.encode(message)
                if syncValidation:
                    state.validate(connection, data)
                datas[index] = data
            except Problem as problem:
                answers[index] = inlet.batch_answer(
                    inlet.about_message(connection, message, problem)
                )
        # One call for the whole batch: its messages go out in as few RPCs as fit.
        results = await state.publish(list(datas.values()), connection) if datas else []
        for index, result in zip(datas, results, strict=True):
            if isinstance(result, Problem):
                answers[index] = inlet.batch_answer(result)
            else:
                answers[index] = {"xactionId": result}
        unavailable = [a for a in answers if a.get("statusCode") == 503]
        if datas and len(unavailable) == len(datas) == len(messages):
            raise results[0]
        body = {
            "inletId": connection.id,
            "batchId": f"{received_ms}:{len(messages)}",
            "receivedTimeMs": received_ms,
            "responses": answers,
        }
        headers = {"Retry-After": str(inlet.RETRY_AFTER_SECONDS)} if unavailable else {}
        return _json(body, 207, request, headers)

    @app.options("/collection/{connection_id}", include_in_schema=False)
    @app.options("/collection/batch/{connection_id}", include_in_schema=False)
    async def preflight(connection_id: str, request: Request):
        connection = state.connections.get(connection_id)
        if connection is None:
            raise Problem(404, "unknown_connection", f"no connection {connection_id!r}")
        origin = request.headers.get("origin", "")
        method = request.headers.get("access-control-request-method", "")
        if not connection.allows_origin(origin) or method.upper() != "POST":
            raise Problem(403, "origin_not_allowed", f"origin {origin!r} may not POST here")
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
                "Vary": "Origin",
            },
        )

    @app.get(
        "/access/entities",
        summary="a unified profile, or its events (Adobe's entities API); a server key",
        responses={400: {}, 401: {}, 403: {}, 404: {}},
    )
    async def access_entities(request: Request):
        state.profile_reader(request)
        params = dict(request.query_params)
        body = await run_in_threadpool(
            profiles.entities, state.table, config.catalog, params, request.url
        )
        return _json(body, 200, request)

    return app


def serve(config, host, port, log_level="info", shutdown_timeout=30.0):
    """Runs the service until SIGTERM or Ctrl-C; then the requests in flight finish
    (within `shutdown_timeout` seconds) and what is batched for Pub/Sub is sent. Returns
    0 after a shutdown on SIGTERM, 3 when it could not start (uvicorn's status)."""
    server = _Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            log_level=log_level,
            timeout_graceful_shutdown=shutdown_timeout,
            # httptools, bounded: a head over 64 KiB is 431, one slower than a body may be 408
            http=BoundedHttpToolsProtocol.with_head_timeout(config.body_timeout),
        )
    )
    server.run()
    return 0 if server.started else STARTUP_FAILURE


STARTUP_FAILURE = 3  # what uvicorn.run exits with when the server did not start


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM is a request to stop, not a failure: uvicorn would
    re-raise it once shut down, and the process would die of it (143 from a shell), where
    Cloud Run and process managers expect 0 after a clean stop. Ctrl-C stays uvicorn's."""

    def handle_exit(self, sig, frame):
        if sig == signal.SIGTERM:
            self.should_exit = True  # as uvicorn's own handler does, without recording it
            return
        super().handle_exit(sig, frame)


class _State:
    def __init__(self, config):
        self.config = config
        self.connections = config.catalog.connections
        self.parser = RecordParser(config.catalog)
        self.publisher = None
        self.table = None

    async def lifespan(self, app):
        self.publisher = InletPublisher(self.config.topic_path, self.config.publish_timeout)
        self.table = open_table(self.config.project, self.config.instance, self.config.table)
        logger.info("Publishing to %s", self.config.topic_path)
        # What is loaded now (350,000 objects: the catalog, Beam, gRPC) lives as long as the
        # service: out of the collector's sight, a full collection takes 0 ms, not 150 ms
        # that every request in flight would wait (the p99 under load).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:  # uvicorn has let the requests in flight finish: send what is batched
            await self.publisher.close()

    def connection(self, connection_id, request):
        """The connection of the path, its credential checked."""
        connection = self.connections.get(connection_id)
        if connection is None:
            raise Problem(404, "unknown_connection", f"no connection {connection_id!r}")
        origin = request.headers.get("origin")
        # A browser names the page's origin on every cross-origin POST; CORS alone would
        # only hide the answer from another site's page, not stop what it sends. No
        # Origin (an app, curl) passes: this bounds web pages, it is no credential.
        if connection.public and origin is not None and not connection.allows_origin(origin):
            raise Problem(
                403,
                "origin_not_allowed",
                f"origin {origin!r} may not send to connection {connection_id!r}",
            )
        if not connection.public and not any(
            [connection.accepts_key(key) for key in _keys(request)]
        ):
            raise Problem(
                401,
                "unauthorized",
                f"connection {connection_id!r} needs its API key (x-api-key, or "
                "Authorization: Bearer KEY)",
            )
        return connection

    def profile_reader(self, request):
        """The server connection whose key the request carries; only one that may read
        profiles passes."""
        keys = _keys(request)
        # Every connection is tried, whatever matches: the time does not tell which.
        matching = [c for c in self.connections.values() if any([c.accepts_key(k) for k in keys])]
        if not matching:
            raise Problem(401, "unauthorized", "reading profiles needs a server connection's key")
        if not any(c.read_profiles for c in matching):
            raise Problem(403, "forbidden", "this connection may not read profiles")

    def validate(self, connection, payload):
        outcome = self.parser.parse_or_fail(payload, {}, step="serve")
        if not isinstance(outcome, Record):
            raise inlet.validation_problem(connection, outcome)

    async def publish(self, datas, connection):
        """Each message's id, or the 503 Problem of one Pub/Sub did not take. Published
        with the connection's id, by which the pipeline trusts its identities only as far
        as that connection (domain/identity_proof.py)."""
        results = await self.publisher.publish(datas, {CONNECTION_ATTRIBUTE: connection.id})
        failed = [r for r in results if isinstance(r, PublishUnavailable)]
        if failed:
            logger.warning("%d of %d publishes failed: %s", len(failed), len(results), failed[0])
        return [inlet.unavailable(r) if isinstance(r, PublishUnavailable) else r for r in results]


def _keys(request):
    keys = []
    if request.headers.get("x-api-key"):
        keys.append(request.headers["x-api-key"])
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        keys.append(token.strip())
    return keys


def _json(body, status, request, headers=None):
    """A JSON answer, with CORS headers where the request's origin is allowed."""
    headers = dict(headers or {})
    origin = request.headers.get("origin")
    connection_id = request.path_params.get("connection_id")
    connection = request.app.state.connections.get(connection_id) if connection_id else None
    if connection is not None and connection.allows_origin(origin):
        headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
    try:  # orjson: a 207's body of 100 answers renders in a tenth of json's time
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a key not a string
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status, headers, media_type="application/json")
