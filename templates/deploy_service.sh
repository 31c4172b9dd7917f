#!/usr/bin/env bash
# Builds the HTTP service's image (templates/service.Dockerfile, with Cloud Build) and
# deploys it to Cloud Run, running as its own service account with only what it uses.
#
#   templates/deploy_service.sh --project PROJECT --region REGION [options] [-- GCLOUD_FLAGS...]
#
#   --project PROJECT        Google Cloud project (required)
#   --region REGION          region of the service and its image (required)
#   --service NAME           Cloud Run service (default: ingest-service)
#   --tag TAG                version of the image (default: the UTC time)
#   --image IMAGE            deploy this image and build none
#   --catalog PATH           dataset catalog with its connections
#                            (default: gs://DATAFLOW_BUCKET/catalog/catalog.yaml)
#   --topic NAME             the pipeline's input topic (default: ingest-input)
#   --dataflow-bucket NAME   the catalog's bucket (default: PROJECT-ingest-dataflow)
#   --private                only callers with roles/run.invoker (Cloud Run's IAM) may
#                            call it; browsers then cannot. Default: public, the
#                            catalog's connections decide (API keys, origins)
#   --min-instances N        kept warm (default: 0)
#   --max-instances N        cap on scaling, and so on cost (default: 10)
#   --concurrency N          requests one instance takes at once (default: 200)
#   --dry-run                print the commands instead of running them
#
# Needs the topic, the Bigtable instance and table and the catalog in Cloud Storage that
# provision.sh makes. Other `gcloud run deploy` flags (--ingress, --vpc-connector, ...)
# go after --.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/defaults.sh"

PROJECT=
REGION=
SERVICE=ingest-service
SERVICE_IMAGE_NAME=ingest-service
RUNTIME_ACCOUNT_NAME=ingest-service
TAG=$(date -u +%Y%m%d-%H%M%S)
IMAGE=
CATALOG=
TOPIC=$INPUT_TOPIC
PUBLIC=true
MIN_INSTANCES=0
MAX_INSTANCES=10
CONCURRENCY=200
while [ $# -gt 0 ]; do
    case "$1" in
        --project) PROJECT=$2; shift 2 ;;
        --region) REGION=$2; shift 2 ;;
        --service) SERVICE=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        --image) IMAGE=$2; shift 2 ;;
        --catalog) CATALOG=$2; shift 2 ;;
        --topic) TOPIC=$2; shift 2 ;;
        --dataflow-bucket) DATAFLOW_BUCKET=$2; shift 2 ;;
        --private) PUBLIC=false; shift ;;
        --min-instances) MIN_INSTANCES=$2; shift 2 ;;
        --max-instances) MAX_INSTANCES=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h|--help) usage "$0"; exit 0 ;;
        --) shift; break ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
need --project "$PROJECT"
need --region "$REGION"
bucket_defaults
CATALOG=${CATALOG:-gs://$DATAFLOW_BUCKET/catalog/catalog.yaml}
ACCOUNT=$RUNTIME_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com
MEMBER=serviceAccount:$ACCOUNT
BUILD=true
if [ -n "$IMAGE" ]; then
    BUILD=false
else
    IMAGE=$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/$SERVICE_IMAGE_NAME:$TAG
fi

# True when the resource exists; with --dry-run nothing is looked up, all is "missing".
exists() {
    [ "$DRY_RUN" = false ] && "$@" >/dev/null 2>&1
}

# A new service account takes a few seconds to be visible to IAM: retry a binding.
bind() {
    if [ "$DRY_RUN" = true ]; then
        run "$@"
        return
    fi
    for attempt in 1 2 3 4 5 6; do
        if "$@" >/dev/null; then
            return
        fi
        sleep 10
    done
    echo "error: failed: $*" >&2
    exit 1
}

say "APIs"
run gcloud services enable run.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com --project "$PROJECT"

say "Service account $ACCOUNT: publishes to the topic, reads profiles and the catalog"
if ! exists gcloud iam service-accounts describe "$ACCOUNT" --project "$PROJECT"; then
    run gcloud iam service-accounts create "$RUNTIME_ACCOUNT_NAME" \
        --display-name "Streaming ingest HTTP service on Cloud Run" --project "$PROJECT"
fi
bind gcloud pubsub topics add-iam-policy-binding "$TOPIC" --member "$MEMBER" \
    --role roles/pubsub.publisher --project "$PROJECT"
bind gcloud bigtable instances add-iam-policy-binding "$BIGTABLE_INSTANCE" --member "$MEMBER" \
    --role roles/bigtable.reader --project "$PROJECT"
case "$CATALOG" in
    gs://*)
        CATALOG_BUCKET=${CATALOG#gs://}
        CATALOG_BUCKET=${CATALOG_BUCKET%%/*}
        bind gcloud storage buckets add-iam-policy-binding "gs://$CATALOG_BUCKET" \
            --member "$MEMBER" --role roles/storage.objectViewer --project "$PROJECT" ;;
esac

if [ "$BUILD" = true ]; then
    say "Image $IMAGE (Cloud Build)"
    run gcloud builds submit "$ROOT" --config "$HERE/service.cloudbuild.yaml" \
        --ignore-file templates/.gcloudignore --substitutions "_IMAGE=$IMAGE" \
        --project "$PROJECT"
fi

command=(gcloud run deploy "$SERVICE" --image "$IMAGE"
    --project "$PROJECT" --region "$REGION"
    --service-account "$ACCOUNT"
    --port 8080 --cpu 1 --memory 1Gi --concurrency "$CONCURRENCY"
    --min-instances "$MIN_INSTANCES" --max-instances "$MAX_INSTANCES"
    --timeout 60
    --set-env-vars "GOOGLE_CLOUD_PROJECT=$PROJECT,INGEST_CATALOG=$CATALOG,INGEST_TOPIC=projects/$PROJECT/topics/$TOPIC,INGEST_INSTANCE=$BIGTABLE_INSTANCE,INGEST_TABLE=$BIGTABLE_TABLE")
if [ "$PUBLIC" = true ]; then
    command+=(--allow-unauthenticated)
else
    command+=(--no-allow-unauthenticated)
fi
say "Cloud Run service $SERVICE in $REGION$([ "$PUBLIC" = true ] && echo ", public")"
run "${command[@]}" "$@"
run gcloud run services describe "$SERVICE" --region "$REGION" --project "$PROJECT" \
    --format "value(status.url)"
