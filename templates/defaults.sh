# Names shared by provision.sh, build.sh and run.sh (sourced by each; flags override them).
# They match the local stack's (`ingest local up`), so commands read the same on both.
INPUT_TOPIC=ingest-input
INPUT_SUBSCRIPTION=ingest-input-sub
DEAD_LETTER_TOPIC=ingest-dead-letter
DEAD_LETTER_SUBSCRIPTION=ingest-dead-letter-sub
BIGTABLE_INSTANCE=ingest-instance
BIGTABLE_TABLE=profiles
REPOSITORY=streaming-ingest
IMAGE_NAME=streaming-ingest-launcher
SERVICE_ACCOUNT_NAME=ingest-dataflow
JOB_NAME=streaming-ingest
# The buckets are named after the project unless given: <project>-ingest-lake for the
# lake, <project>-ingest-dataflow for Dataflow's temp and staging files, the template
# spec and the catalog.
LAKE_BUCKET=
DATAFLOW_BUCKET=
DRY_RUN=false

# Runs a command, or with --dry-run prints it (quoted so it can be pasted) instead.
run() {
    if [ "$DRY_RUN" = true ]; then
        printf '%q ' "$@" | sed 's/ $//'
        echo
    else
        "$@"
    fi
}

# Says something on stderr, so that --dry-run's stdout holds only the commands.
say() {
    echo "== $*" >&2
}

# Fails with a message when a required value is missing.
need() {
    if [ -z "$2" ]; then
        echo "error: $1 is required (see --help)" >&2
        exit 2
    fi
}

# Prints the comment block at the top of a script, as its help.
usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$1"
}

bucket_defaults() {
    LAKE_BUCKET=${LAKE_BUCKET:-$PROJECT-ingest-lake}
    DATAFLOW_BUCKET=${DATAFLOW_BUCKET:-$PROJECT-ingest-dataflow}
}
