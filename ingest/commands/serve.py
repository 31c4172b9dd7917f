"""`ingest serve`: the HTTP service (service/), on uvicorn."""

import os

from ingest import admin
from ingest.common import (
    HelpFormatter,
    UsageError,
    add_catalog_argument,
    add_table_arguments,
    load_catalog,
    logger,
    pubsub_endpoint,
    resource_path,
)

DEFAULT_PORT = 8080

DESCRIPTION = (
    "Serve Adobe's streaming inlet and a profile API over HTTP (docs/service.md):\n"
    "  POST /collection/{connectionId}        one message in Adobe's envelope, answered once\n"
    "                                         Pub/Sub has confirmed it (?syncValidation=true)\n"
    '  POST /collection/batch/{connectionId}  {"messages": [...]}, one answer each (207)\n'
    "  GET  /access/entities                  a unified profile or its events (a server key)\n"
    "  GET  /openapi.json, /docs              the OpenAPI description\n"
    "Connections (who may send, to which datasets, from which origins, with which key) are\n"
    "the catalog's `connections`. Messages go to --topic unchanged, as `ingest publish` sends\n"
    "them; profiles are read from the Bigtable table the pipeline writes.\n"
    "Environment: PORT (Cloud Run's), PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST (the\n"
    "emulators; unset: Google Cloud), PUBSUB_PROJECT_ID or GOOGLE_CLOUD_PROJECT (--project).\n"
    "SIGTERM or Ctrl-C: stops taking requests, finishes those in flight, then exits (0\n"
    "after SIGTERM)."
)
EPILOG = (
    "example:\n"
    '  eval "$(ingest local up)"\n'
    "  ingest serve --catalog examples/catalog.yaml --topic ingest-input --port 8080"
)


def add_parser(commands):
    serve = commands.add_parser(
        "serve",
        help="serve the HTTP streaming inlet and the profile API",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (in a container)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or DEFAULT_PORT),
        help="port to listen on ($PORT, else 8080)",
    )
    serve.add_argument(
        "--topic",
        default=admin.DEFAULT_TOPIC,
        help="input topic of the pipeline: a name, or projects/P/topics/T",
    )
    add_catalog_argument(serve, "datasets, schemas and connections")
    add_table_arguments(serve)
    for action in serve._actions:  # the table's project is the topic's too
        if action.dest == "project":
            action.help = (
                "project of a short --topic name and of the Bigtable instance "
                "($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)"
            )
    serve.add_argument(
        "--publish-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a message may wait for Pub/Sub before it is answered 503",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a request's headers, then its body, may take to arrive before it is "
        "answered 408",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long requests in flight may take to finish",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level",
    )
    serve.set_defaults(handler=serve_http)


def serve_http(args):
    from service.app import ServiceConfig, serve  # here: other commands load no web stack

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {args.port}")
    catalog = load_catalog(args.catalog)
    topic_path = resource_path(args.topic, args.project, "topics")
    config = ServiceConfig(
        catalog=catalog,
        topic_path=topic_path,
        project=args.project,
        instance=args.instance,
        table=args.table,
        publish_timeout=args.publish_timeout,
        body_timeout=args.body_timeout,
    )
    logger.info(
        "Serving %d connections on http://%s:%d, to %s (%s)",
        len(catalog.connections),
        args.host,
        args.port,
        topic_path,
        pubsub_endpoint(),
    )
    return serve(config, args.host, args.port, args.log_level, args.shutdown_timeout)
