#!/usr/bin/env bash
# Builds the flex template: the launcher image (templates/Dockerfile, built by Cloud Build
# and pushed to Artifact Registry) and the template spec in Cloud Storage, which names the
# image and carries the parameters of templates/metadata.json.
#
#   templates/build.sh --project PROJECT --region REGION [options]
#
#   --project PROJECT        Google Cloud project (required)
#   --region REGION          region of the Artifact Registry repository (required)
#   --dataflow-bucket NAME   bucket for the spec (default: PROJECT-ingest-dataflow)
#   --repository NAME        Artifact Registry repository (default: streaming-ingest)
#   --tag TAG                version of the image and the spec (default: the UTC time)
#   --dry-run                print the commands instead of running them
#
# Each build keeps its spec, gs://BUCKET/templates/streaming-ingest-TAG.json, and copies
# it to gs://BUCKET/templates/streaming-ingest.json, which run.sh launches by default.
# Needs gcloud, signed in, and the resources of provision.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/defaults.sh"

PROJECT=
REGION=
TAG=$(date -u +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
        --project) PROJECT=$2; shift 2 ;;
        --region) REGION=$2; shift 2 ;;
        --dataflow-bucket) DATAFLOW_BUCKET=$2; shift 2 ;;
        --repository) REPOSITORY=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h|--help) usage "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
need --project "$PROJECT"
need --region "$REGION"
bucket_defaults
IMAGE=$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/$IMAGE_NAME:$TAG
SPEC=gs://$DATAFLOW_BUCKET/templates/$JOB_NAME-$TAG.json
LATEST=gs://$DATAFLOW_BUCKET/templates/$JOB_NAME.json

say "Launcher image $IMAGE (Cloud Build)"
run gcloud builds submit "$ROOT" --config "$HERE/cloudbuild.yaml" \
    --ignore-file templates/.gcloudignore --substitutions "_IMAGE=$IMAGE" \
    --project "$PROJECT"

say "Template spec $SPEC"
run gcloud dataflow flex-template build "$SPEC" --image "$IMAGE" --sdk-language PYTHON \
    --metadata-file "$HERE/metadata.json" --enable-streaming-engine --project "$PROJECT"
run gcloud storage cp "$SPEC" "$LATEST" --project "$PROJECT"

say "Built: $SPEC (also $LATEST)"
