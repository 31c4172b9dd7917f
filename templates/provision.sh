#!/usr/bin/env bash
# Creates what a Dataflow deployment of the pipeline needs, in one project and region, and
# prints what it made. Safe to run again: what already exists is kept as it is.
#
#   templates/provision.sh --project PROJECT --region REGION [options]
#
#   --project PROJECT        Google Cloud project (required)
#   --region REGION          region of the job, the buckets and the image (required)
#   --zone ZONE              zone of the Bigtable cluster (default: REGION-b)
#   --bigtable-nodes N       nodes of the Bigtable cluster (default: 1)
#   --catalog FILE           dataset catalog; its folder (schemas too) is copied to
#                            gs://DATAFLOW_BUCKET/catalog/ (default: examples/catalog.yaml)
#   --lake-bucket NAME       bucket of the lake (default: PROJECT-ingest-lake)
#   --dataflow-bucket NAME   bucket of temp and staging files, template spec and catalog
#                            (default: PROJECT-ingest-dataflow)
#   --dry-run                print the commands instead of running them
#
# It creates: the input topic and its subscription, the dead-letter topic and a
# subscription that keeps dead letters, the two buckets, an Artifact Registry repository
# for the launcher image, the Bigtable instance and the profile table (`ingest bootstrap`),
# and the service account the launcher and the workers run as, with only these roles:
# Dataflow Worker on the project, Pub/Sub Subscriber and Viewer on the subscription,
# Publisher on the dead-letter topic, Bigtable User on the instance, Storage Object Admin
# on the two buckets and Artifact Registry Reader on the repository.
#
# Needs gcloud, signed in (`gcloud auth login`, and `gcloud auth application-default
# login` for `ingest bootstrap`), and `ingest` on the PATH (the project installed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/defaults.sh"

PROJECT=
REGION=
ZONE=
BIGTABLE_NODES=1
CATALOG=$ROOT/examples/catalog.yaml
while [ $# -gt 0 ]; do
    case "$1" in
        --project) PROJECT=$2; shift 2 ;;
        --region) REGION=$2; shift 2 ;;
        --zone) ZONE=$2; shift 2 ;;
        --bigtable-nodes) BIGTABLE_NODES=$2; shift 2 ;;
        --catalog) CATALOG=$2; shift 2 ;;
        --lake-bucket) LAKE_BUCKET=$2; shift 2 ;;
        --dataflow-bucket) DATAFLOW_BUCKET=$2; shift 2 ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h|--help) usage "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
need --project "$PROJECT"
need --region "$REGION"
ZONE=${ZONE:-$REGION-b}
bucket_defaults
SERVICE_ACCOUNT=$SERVICE_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com
MEMBER=serviceAccount:$SERVICE_ACCOUNT
CATALOG_URL=gs://$DATAFLOW_BUCKET/catalog/$(basename "$CATALOG")

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
run gcloud services enable dataflow.googleapis.com pubsub.googleapis.com \
    bigtable.googleapis.com bigtableadmin.googleapis.com storage.googleapis.com \
    artifactregistry.googleapis.com cloudbuild.googleapis.com compute.googleapis.com \
    iam.googleapis.com --project "$PROJECT"

say "Pub/Sub: topic $INPUT_TOPIC, subscription $INPUT_SUBSCRIPTION"
if ! exists gcloud pubsub topics describe "$INPUT_TOPIC" --project "$PROJECT"; then
    run gcloud pubsub topics create "$INPUT_TOPIC" --project "$PROJECT"
fi
if ! exists gcloud pubsub subscriptions describe "$INPUT_SUBSCRIPTION" --project "$PROJECT"; then
    run gcloud pubsub subscriptions create "$INPUT_SUBSCRIPTION" --topic "$INPUT_TOPIC" \
        --ack-deadline 60 --message-retention-duration 7d --expiration-period never \
        --project "$PROJECT"
fi

say "Pub/Sub: dead-letter topic $DEAD_LETTER_TOPIC, subscription $DEAD_LETTER_SUBSCRIPTION"
if ! exists gcloud pubsub topics describe "$DEAD_LETTER_TOPIC" --project "$PROJECT"; then
    run gcloud pubsub topics create "$DEAD_LETTER_TOPIC" --project "$PROJECT"
fi
if ! exists gcloud pubsub subscriptions describe "$DEAD_LETTER_SUBSCRIPTION" --project "$PROJECT"; then
    # Without a subscription a topic keeps nothing: this one holds the dead letters for
    # `ingest dead-letter pull` and `ingest replay`, 7 days.
    run gcloud pubsub subscriptions create "$DEAD_LETTER_SUBSCRIPTION" \
        --topic "$DEAD_LETTER_TOPIC" --message-retention-duration 7d \
        --expiration-period never --project "$PROJECT"
fi

say "Cloud Storage: gs://$LAKE_BUCKET (the lake), gs://$DATAFLOW_BUCKET (Dataflow's files)"
if ! exists gcloud storage buckets describe "gs://$LAKE_BUCKET" --project "$PROJECT"; then
    run gcloud storage buckets create "gs://$LAKE_BUCKET" --location "$REGION" \
        --uniform-bucket-level-access --public-access-prevention --project "$PROJECT"
fi
if ! exists gcloud storage buckets describe "gs://$DATAFLOW_BUCKET" --project "$PROJECT"; then
    # Temp and staging files are rewritten all the time: soft delete would bill for
    # every deleted one, so it is off here (and kept on the lake's bucket).
    run gcloud storage buckets create "gs://$DATAFLOW_BUCKET" --location "$REGION" \
        --uniform-bucket-level-access --public-access-prevention --soft-delete-duration 0 \
        --project "$PROJECT"
fi
say "Catalog: $(dirname "$CATALOG")/ -> gs://$DATAFLOW_BUCKET/catalog/"
run gcloud storage rsync --recursive "$(dirname "$CATALOG")" "gs://$DATAFLOW_BUCKET/catalog" \
    --project "$PROJECT"

say "Artifact Registry: repository $REPOSITORY"
if ! exists gcloud artifacts repositories describe "$REPOSITORY" --location "$REGION" \
        --project "$PROJECT"; then
    run gcloud artifacts repositories create "$REPOSITORY" --repository-format docker \
        --location "$REGION" --project "$PROJECT"
fi

say "Bigtable: instance $BIGTABLE_INSTANCE ($BIGTABLE_NODES node(s) in $ZONE), table $BIGTABLE_TABLE"
if ! exists gcloud bigtable instances describe "$BIGTABLE_INSTANCE" --project "$PROJECT"; then
    run gcloud bigtable instances create "$BIGTABLE_INSTANCE" \
        --display-name "Streaming ingest profiles" \
        --cluster-config "id=${BIGTABLE_INSTANCE:0:27}-c1,zone=$ZONE,nodes=$BIGTABLE_NODES" \
        --cluster-storage-type ssd --project "$PROJECT"
fi
# Creates the table with the column families and GC rules the catalog needs, or brings
# an existing one up to date; on Cloud Bigtable, whatever the environment says.
run env -u BIGTABLE_EMULATOR_HOST ingest bootstrap --catalog "$CATALOG" --project "$PROJECT" \
    --instance "$BIGTABLE_INSTANCE" --table "$BIGTABLE_TABLE"

say "Service account $SERVICE_ACCOUNT and its roles"
if ! exists gcloud iam service-accounts describe "$SERVICE_ACCOUNT" --project "$PROJECT"; then
    run gcloud iam service-accounts create "$SERVICE_ACCOUNT_NAME" \
        --display-name "Streaming ingest on Dataflow" --project "$PROJECT"
fi
bind gcloud projects add-iam-policy-binding "$PROJECT" --member "$MEMBER" \
    --role roles/dataflow.worker --condition None
bind gcloud pubsub subscriptions add-iam-policy-binding "$INPUT_SUBSCRIPTION" \
    --member "$MEMBER" --role roles/pubsub.subscriber --project "$PROJECT"
# Dataflow's Pub/Sub source reads the subscription's metadata too.
bind gcloud pubsub subscriptions add-iam-policy-binding "$INPUT_SUBSCRIPTION" \
    --member "$MEMBER" --role roles/pubsub.viewer --project "$PROJECT"
bind gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
    --member "$MEMBER" --role roles/pubsub.publisher --project "$PROJECT"
bind gcloud bigtable instances add-iam-policy-binding "$BIGTABLE_INSTANCE" \
    --member "$MEMBER" --role roles/bigtable.user --project "$PROJECT"
bind gcloud storage buckets add-iam-policy-binding "gs://$LAKE_BUCKET" \
    --member "$MEMBER" --role roles/storage.objectAdmin --project "$PROJECT"
bind gcloud storage buckets add-iam-policy-binding "gs://$DATAFLOW_BUCKET" \
    --member "$MEMBER" --role roles/storage.objectAdmin --project "$PROJECT"
bind gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" \
    --member "$MEMBER" --role roles/artifactregistry.reader --location "$REGION" \
    --project "$PROJECT"

cat >&2 <<EOF

Provisioned in project $PROJECT, region $REGION$([ "$DRY_RUN" = true ] && echo " (dry run: nothing was created)"):
  input topic          projects/$PROJECT/topics/$INPUT_TOPIC
  input subscription   projects/$PROJECT/subscriptions/$INPUT_SUBSCRIPTION
  dead-letter topic    projects/$PROJECT/topics/$DEAD_LETTER_TOPIC
  dead letters kept in projects/$PROJECT/subscriptions/$DEAD_LETTER_SUBSCRIPTION
  lake                 gs://$LAKE_BUCKET/lake
  Dataflow files       gs://$DATAFLOW_BUCKET/temp, gs://$DATAFLOW_BUCKET/staging
  catalog              $CATALOG_URL
  image repository     $REGION-docker.pkg.dev/$PROJECT/$REPOSITORY
  Bigtable             instance $BIGTABLE_INSTANCE ($BIGTABLE_NODES node(s), $ZONE), table $BIGTABLE_TABLE
  service account      $SERVICE_ACCOUNT
Next, the template and the job:
  templates/build.sh --project $PROJECT --region $REGION --dataflow-bucket $DATAFLOW_BUCKET
  templates/run.sh --project $PROJECT --region $REGION --lake-bucket $LAKE_BUCKET --dataflow-bucket $DATAFLOW_BUCKET --catalog $CATALOG_URL
EOF
