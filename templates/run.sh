#!/usr/bin/env bash
# Starts the pipeline on Dataflow from the flex template, or updates the running job.
#
#   templates/run.sh --project PROJECT --region REGION [options] [-- GCLOUD_FLAGS...]
#
#   --project PROJECT        Google Cloud project (required)
#   --region REGION          region of the job (required)
#   --template GCS_PATH      template spec (default: the latest build.sh made,
#                            gs://DATAFLOW_BUCKET/templates/streaming-ingest.json)
#   --job-name NAME          (default: streaming-ingest)
#   --catalog PATH           dataset catalog (default: gs://DATAFLOW_BUCKET/catalog/catalog.yaml)
#   --lake-bucket NAME       the lake is gs://NAME/lake (default: PROJECT-ingest-lake)
#   --dataflow-bucket NAME   temp and staging files (default: PROJECT-ingest-dataflow)
#   --window-seconds N       the lake's window (default: 60)
#   --max-workers N          cap on autoscaling, and so on cost (default: 3)
#   --update                 replace the running job of the same name, keeping its state
#   --transform-name-mappings OLD=NEW[,...]
#                            with --update, after a step was renamed
#   --dry-run                print the command instead of running it
#
# The Pub/Sub, Bigtable and service-account names are provision.sh's. Other gcloud flags
# (--worker-machine-type, --network, --subnetwork, --disable-public-ips, ...) go after --.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/defaults.sh"

PROJECT=
REGION=
TEMPLATE=
CATALOG=
WINDOW_SECONDS=60
MAX_WORKERS=3
UPDATE=false
MAPPINGS=
while [ $# -gt 0 ]; do
    case "$1" in
        --project) PROJECT=$2; shift 2 ;;
        --region) REGION=$2; shift 2 ;;
        --template) TEMPLATE=$2; shift 2 ;;
        --job-name) JOB_NAME=$2; shift 2 ;;
        --catalog) CATALOG=$2; shift 2 ;;
        --lake-bucket) LAKE_BUCKET=$2; shift 2 ;;
        --dataflow-bucket) DATAFLOW_BUCKET=$2; shift 2 ;;
        --window-seconds) WINDOW_SECONDS=$2; shift 2 ;;
        --max-workers) MAX_WORKERS=$2; shift 2 ;;
        --update) UPDATE=true; shift ;;
        --transform-name-mappings) MAPPINGS=$2; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h|--help) usage "$0"; exit 0 ;;
        --) shift; break ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
need --project "$PROJECT"
need --region "$REGION"
bucket_defaults
TEMPLATE=${TEMPLATE:-gs://$DATAFLOW_BUCKET/templates/$JOB_NAME.json}
CATALOG=${CATALOG:-gs://$DATAFLOW_BUCKET/catalog/catalog.yaml}

command=(gcloud dataflow flex-template run "$JOB_NAME"
    --template-file-gcs-location "$TEMPLATE"
    --project "$PROJECT" --region "$REGION"
    --service-account-email "$SERVICE_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com"
    --staging-location "gs://$DATAFLOW_BUCKET/staging"
    --temp-location "gs://$DATAFLOW_BUCKET/temp"
    --enable-streaming-engine --max-workers "$MAX_WORKERS"
    --parameters "input_subscription=projects/$PROJECT/subscriptions/$INPUT_SUBSCRIPTION"
    --parameters "dead_letter_topic=projects/$PROJECT/topics/$DEAD_LETTER_TOPIC"
    --parameters "catalog=$CATALOG"
    --parameters "lake_path=gs://$LAKE_BUCKET/lake"
    --parameters "bigtable_project=$PROJECT"
    --parameters "bigtable_instance=$BIGTABLE_INSTANCE"
    --parameters "bigtable_table=$BIGTABLE_TABLE"
    --parameters "window_seconds=$WINDOW_SECONDS")
if [ "$UPDATE" = true ]; then
    # Dataflow matches the new job's steps to the running one's by name (ReadMessages,
    # ParseAndValidate, ...) and carries their state over; a rename needs a mapping.
    command+=(--update)
    if [ -n "$MAPPINGS" ]; then
        command+=(--transform-name-mappings "$MAPPINGS")
    fi
fi
say "Job $JOB_NAME from $TEMPLATE$([ "$UPDATE" = true ] && echo ", updating the running job")"
run "${command[@]}" "$@"
