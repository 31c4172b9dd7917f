"""The Dataflow deployment, checked offline (templates/):

- the flex template's metadata.json against the pipeline's own options (the option
  checks that stop a launch before any worker starts: tests/pipelines/test_options.py);
- the job graph the DataflowRunner builds for Dataflow (a dry run, kept off the network);
- the commands the provisioning, build and run scripts print with --dry-run;
- the sdist and the wheel, installed in a fresh virtual environment (about a minute:
  pip fetches apache-beam[gcp] and the rest from PyPI).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_runner_api_pb2

from domain.catalog import Catalog
from helpers.examples import EXAMPLE_CATALOG, REPO
from helpers.pipeline_arguments import VALID, argv_of, pipeline_options, required_options
from pipelines.options import IngestOptions, check_options, parse_options
from pipelines.streaming_ingest import build_pipeline

TEMPLATES = REPO / "templates"
TOP_LEVEL_STEPS = [
    "ReadMessages",
    "ParseAndValidate",
    "WriteProfiles",
    "WriteToLake",
    "CollectFailures",
    "DeadLetter",
]

# The fields of ParameterMetadata and the values of ParameterType in the Dataflow API
# (v1b3): a misspelt field such as "is_optional" would pass gcloud and be ignored.
PARAMETER_FIELDS = {
    "name",
    "label",
    "helpText",
    "isOptional",
    "regexes",
    "paramType",
    "customMetadata",
    "groupName",
    "parentName",
    "parentTriggerValues",
    "enumOptions",
    "defaultValue",
    "hiddenUi",
}
PARAMETER_TYPES = {
    "DEFAULT",
    "TEXT",
    "GCS_READ_BUCKET",
    "GCS_WRITE_BUCKET",
    "GCS_READ_FILE",
    "GCS_WRITE_FILE",
    "GCS_READ_FOLDER",
    "GCS_WRITE_FOLDER",
    "PUBSUB_TOPIC",
    "PUBSUB_SUBSCRIPTION",
    "BIGQUERY_TABLE",
    "JAVASCRIPT_UDF_FILE",
    "SERVICE_ACCOUNT",
    "MACHINE_TYPE",
    "KMS_KEY_NAME",
    "WORKER_REGION",
    "WORKER_ZONE",
    "BOOLEAN",
    "ENUM",
    "NUMBER",
}


@pytest.fixture(scope="module")
def metadata():
    return json.loads((TEMPLATES / "metadata.json").read_text())


@pytest.fixture(scope="module")
def parameters(metadata):
    return {parameter["name"]: parameter for parameter in metadata["parameters"]}


# -- metadata.json against the pipeline's options --------------------------------------


def test_metadata_has_one_parameter_per_pipeline_option_in_order(metadata):
    assert [p["name"] for p in metadata["parameters"]] == list(pipeline_options())
    assert metadata["name"] and metadata["description"]


def test_metadata_requires_exactly_the_options_the_pipeline_requires(parameters):
    required = required_options()
    assert required, "check_options asked for no option"
    for name, parameter in parameters.items():
        assert parameter.get("isOptional", False) == (name not in required), name


def test_metadata_and_options_both_have_help_texts_and_labels(parameters):
    for name, action in pipeline_options().items():
        assert action.help and action.help.strip(), f"--{name} has no help text"
        assert parameters[name]["helpText"].strip(), f"{name} has no helpText"
        assert parameters[name]["label"].strip(), f"{name} has no label"


def test_metadata_defaults_are_the_options_defaults(parameters):
    for name, action in pipeline_options().items():
        if action.default is None:
            assert "defaultValue" not in parameters[name], name
        else:
            assert parameters[name].get("defaultValue") == str(action.default), name


def test_metadata_uses_only_what_the_dataflow_api_defines(metadata):
    assert set(metadata) <= {
        "name",
        "description",
        "parameters",
        "streaming",
        "supportsAtLeastOnce",
        "supportsExactlyOnce",
        "defaultStreamingMode",
    }
    for parameter in metadata["parameters"]:
        assert set(parameter) <= PARAMETER_FIELDS, parameter["name"]
        assert parameter.get("paramType", "TEXT") in PARAMETER_TYPES, parameter["name"]
        for regex in parameter.get("regexes", []):
            re.compile(regex)


# Sample values, valid then invalid, on which metadata.json's regexes and the pipeline's
# own checks must agree (the job runs on Dataflow here, so the lake must be gs://).
REGEX_SAMPLES = {
    "input_subscription": (
        [
            "projects/demo-project/subscriptions/ingest-input-sub",
            "projects/example.com:my-project/subscriptions/Sub_1.a~b+c%d",
        ],
        [
            "projects/demo-project/topics/ingest-input",
            "projects/p/subscriptions/sub",
            "projects/Demo-Project/subscriptions/sub",
            "projects/demo-project/subscriptions/1sub",
            "projects/demo-project/subscriptions/ab",
            "projects/demo-project/subscriptions/a/b",
            "demo-project/ingest-input-sub",
        ],
    ),
    "dead_letter_topic": (
        ["projects/demo-project/topics/ingest-dead-letter", "projects/my-project-42/topics/dlq"],
        [
            "projects/demo-project/subscriptions/dlq",
            "projects/demo-project-/topics/dlq",
            "projects/demo-project/topics/-dlq",
            "projects/demo-project/topics/",
        ],
    ),
    "lake_path": (
        ["gs://demo-bucket/lake", "gs://demo-bucket"],
        ["/tmp/lake", "lake", "s3://bucket/lake"],
    ),
    "bigtable_project": (
        ["demo-project", "my-project-123", "a23456", "example.com:my-project"],
        ["p", "Demo-Project", "1project", "project-", "a" * 31, "my_project"],
    ),
    "bigtable_instance": (
        ["ingest-instance", "abcdef", "a" + "b" * 32],
        ["abcde", "Ingest-instance", "1instance", "instance-", "a" * 34, "ingest_instance"],
    ),
    "bigtable_table": (
        ["profiles", "_profiles", "Profiles.v2-x", "9", "a" * 50],
        ["", "-profiles", ".profiles", "a" * 51, "pro/files", "pro files"],
    ),
    "window_seconds": (["1", "60", "3600"], ["0", "-1"]),
    "pubsub_readers": (["1", "4"], ["0", "-2"]),
    "dedup_minutes": (["1", "10", "1440"], ["0", "-5"]),
}


@pytest.mark.parametrize("name", REGEX_SAMPLES)
def test_metadata_regexes_agree_with_the_option_checks(parameters, name):
    valid, invalid = REGEX_SAMPLES[name]
    for value in valid + invalid:
        options = PipelineOptions(argv_of({**VALID, name: value}) + ["--runner=DataflowRunner"])
        problems = check_options(options.view_as(IngestOptions))
        accepted_by_check = not any(p.startswith(f"--{name} ") for p in problems)
        accepted_by_regex = all(re.search(regex, value) for regex in parameters[name]["regexes"])
        assert accepted_by_check == accepted_by_regex == (value in valid), (value, problems)


def test_catalog_regex_takes_cloud_storage_and_paths_in_the_image(parameters):
    (regex,) = parameters["catalog"]["regexes"]
    for value in ["gs://my-bucket/catalog/catalog.yaml", "/template/examples/catalog.yaml"]:
        assert re.search(regex, value), value
    for value in ["examples/catalog.yaml", "gs://b/c.yaml\nx"]:
        assert not re.search(regex, value), value


@pytest.fixture(scope="module")
def offline_gcloud(tmp_path_factory):
    """gcloud with an empty configuration, no account, no GCE metadata credentials and
    a proxy that refuses every connection: it parses a command's flags and stops at
    "no active account" before sending anything."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("the Google Cloud CLI (gcloud) is not installed")
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CLOUDSDK_", "GOOGLE_"))
    }
    environment.update(
        {
            "CLOUDSDK_CONFIG": str(tmp_path_factory.mktemp("gcloud-config")),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_PROXY_TYPE": "http",
            "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
            "CLOUDSDK_PROXY_PORT": "9",
        }
    )
    return environment


def test_gcloud_reads_the_metadata_into_a_template_spec(offline_gcloud):
    result = subprocess.run(
        [
            "gcloud",
            "dataflow",
            "flex-template",
            "build",
            "gs://demo-bucket/t.json",
            "--image=europe-west1-docker.pkg.dev/demo-project/r/launcher:1",
            "--sdk-language=PYTHON",
            f"--metadata-file={TEMPLATES / 'metadata.json'}",
            "--project=demo-project",
            "--print-only",
            "--format=json",
        ],
        capture_output=True,
        text=True,
        env=offline_gcloud,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    spec = json.loads(json.loads(result.stdout))
    assert spec["sdkInfo"] == {"language": "PYTHON"}
    assert spec["metadata"] == json.loads((TEMPLATES / "metadata.json").read_text())


# -- the Dataflow job graph -------------------------------------------------------------


@dataclass
class DryRun:
    job: object  # apache_beam.runners.dataflow.internal.apiclient.Job
    connections: list  # every network address something tried to reach


def dataflow_dry_run(monkeypatch, extra_argv=()):
    """Builds the job the DataflowRunner would submit, without submitting it. A valid
    gs:// temp location keeps Beam from looking for a default bucket (which needs
    credentials and Cloud Storage); every attempt to open a connection is recorded and
    refused."""
    connections = []

    def refuse(address, *args, **kwargs):
        connections.append(address)
        raise OSError(f"network access in an offline test: {address}")

    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: refuse((host, port)))
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # google-auth: no metadata server probe
    options = parse_options(
        argv_of(VALID)
        + [
            "--runner=DataflowRunner",
            "--dry_run=True",
            "--project=demo-project",
            "--region=europe-west1",
            "--temp_location=gs://demo-bucket/temp",
            *extra_argv,
        ]
    )
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, options.view_as(IngestOptions), Catalog.load(str(EXAMPLE_CATALOG)))
    result = pipeline.run()
    return DryRun(result.job, connections)


@pytest.fixture(scope="module")
def dry_run():
    with pytest.MonkeyPatch.context() as monkeypatch:
        # --setup_file as the flex template's launcher passes it: Beam builds the sdist.
        return dataflow_dry_run(monkeypatch, [f"--setup_file={REPO / 'setup.py'}"])


def transforms_of(job):
    return job.proto_pipeline.components.transforms


def top_level_steps(job):
    transforms = transforms_of(job)
    (root,) = job.proto_pipeline.root_transform_ids
    return [transforms[child].unique_name for child in transforms[root].subtransforms]


def test_dry_run_stays_off_the_network(dry_run):
    assert dry_run.connections == []


def test_the_job_is_a_streaming_job(dry_run):
    assert json.loads(dry_run.job.json())["type"] == "JOB_TYPE_STREAMING"


def test_the_job_has_the_stable_top_level_steps(dry_run):
    assert top_level_steps(dry_run.job) == TOP_LEVEL_STEPS


def test_step_names_are_the_same_on_every_build(dry_run, monkeypatch):
    names = {t.unique_name for t in transforms_of(dry_run.job).values()}
    again = {t.unique_name for t in transforms_of(dataflow_dry_run(monkeypatch).job).values()}
    assert names == again
    # A name with a lambda or a line number would change with an unrelated edit.
    assert not [name for name in names if "<lambda" in name or ".py:" in name]


def steps_with_urn(job, urn):
    return {t.unique_name: t for t in transforms_of(job).values() if t.spec.urn == urn}


def test_pubsub_is_read_and_written_by_dataflow_itself(dry_run):
    reads = steps_with_urn(dry_run.job, "beam:transform:pubsub_read:v1")
    assert list(reads) == ["ReadMessages/Read0/Read"]
    read = beam_runner_api_pb2.PubSubReadPayload.FromString(
        reads["ReadMessages/Read0/Read"].spec.payload
    )
    assert read.subscription == VALID["input_subscription"]
    assert read.with_attributes
    writes = steps_with_urn(dry_run.job, "beam:transform:pubsub_write:v1")
    assert [name.split("/")[0] for name in writes] == ["DeadLetter"]
    (write,) = writes.values()
    payload = beam_runner_api_pb2.PubSubWritePayload.FromString(write.spec.payload)
    assert payload.topic == VALID["dead_letter_topic"]


def test_the_workers_get_the_package_from_setup_py(dry_run):
    staged = set()
    for environment in dry_run.job.proto_pipeline.components.environments.values():
        for artifact in environment.dependencies:
            staged.add(
                beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                    artifact.role_payload
                ).staged_name
            )
    assert "workflow.tar.gz" in staged  # Beam's name for the sdist built from setup.py


def launch_dry_run(resources, cwd, table=None):
    """The command line the flex template's launcher runs: FLEX_TEMPLATE_PYTHON_PY_FILE as
    a script (so it is __main__, whose session Dataflow pickles), with --setup_file."""
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "pipelines" / "streaming_ingest.py"),
            *argv_of(
                {
                    **VALID,
                    "input_subscription": resources.subscription_path,
                    "dead_letter_topic": resources.dead_letter_topic_path,
                    "bigtable_project": resources.project,
                    "bigtable_instance": resources.instance,
                    "bigtable_table": table or resources.table,
                }
            ),
            "--runner=DataflowRunner",
            "--dry_run=True",
            f"--project={resources.project}",
            "--region=europe-west1",
            "--temp_location=gs://demo-bucket/temp",
            f"--setup_file={REPO / 'setup.py'}",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "NO_GCE_CHECK": "True"},
    )


def test_the_launcher_command_line_builds_the_job(pubsub_resources, tmp_path):
    # The catalog is read and the profile table checked, here on the Bigtable emulator.
    result = launch_dry_run(pubsub_resources, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "INFO catalog " in result.stderr and "Traceback" not in result.stderr


def test_the_launch_stops_when_the_profile_table_is_missing(pubsub_resources, tmp_path):
    result = launch_dry_run(pubsub_resources, tmp_path, table="no-such-table")
    assert result.returncode == 1
    assert "no-such-table does not exist; create it with: ingest bootstrap" in result.stderr


# -- the scripts ------------------------------------------------------------------------


def dry_run_script(script, *args):
    result = subprocess.run(
        [
            "bash",
            str(TEMPLATES / script),
            "--project",
            "demo-project",
            "--region",
            "europe-west1",
            "--dry-run",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_provisioning_creates_what_the_job_needs():
    commands = "\n".join(dry_run_script("provision.sh"))
    for expected in [
        "gcloud pubsub topics create ingest-input ",
        "gcloud pubsub subscriptions create ingest-input-sub --topic ingest-input ",
        "gcloud pubsub topics create ingest-dead-letter ",
        "gcloud pubsub subscriptions create ingest-dead-letter-sub --topic ingest-dead-letter ",
        "gcloud storage buckets create gs://demo-project-ingest-lake ",
        "gcloud storage buckets create gs://demo-project-ingest-dataflow ",
        "gcloud artifacts repositories create streaming-ingest ",
        "gcloud bigtable instances create ingest-instance ",
        f"ingest bootstrap --catalog {EXAMPLE_CATALOG} --project demo-project "
        "--instance ingest-instance --table profiles",
        "gcloud iam service-accounts create ingest-dataflow ",
    ]:
        assert expected in commands


def test_the_service_account_gets_only_the_roles_it_needs():
    member = "serviceAccount:ingest-dataflow@demo-project.iam.gserviceaccount.com"
    grants = set()
    for command in dry_run_script("provision.sh"):
        if "add-iam-policy-binding" in command:
            words = command.split()
            assert words[words.index("--member") + 1] == member
            grants.add(
                (" ".join(words[1 : words.index("--member")]), words[words.index("--role") + 1])
            )
    assert grants == {
        ("projects add-iam-policy-binding demo-project", "roles/dataflow.worker"),
        ("pubsub subscriptions add-iam-policy-binding ingest-input-sub", "roles/pubsub.subscriber"),
        ("pubsub subscriptions add-iam-policy-binding ingest-input-sub", "roles/pubsub.viewer"),
        ("pubsub topics add-iam-policy-binding ingest-dead-letter", "roles/pubsub.publisher"),
        ("bigtable instances add-iam-policy-binding ingest-instance", "roles/bigtable.user"),
        (
            "storage buckets add-iam-policy-binding gs://demo-project-ingest-lake",
            "roles/storage.objectAdmin",
        ),
        (
            "storage buckets add-iam-policy-binding gs://demo-project-ingest-dataflow",
            "roles/storage.objectAdmin",
        ),
        (
            "artifacts repositories add-iam-policy-binding streaming-ingest",
            "roles/artifactregistry.reader",
        ),
    }


def run_parameters(command):
    words = command.split()
    return dict(
        words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--parameters"
    )


def test_the_run_script_passes_valid_values_for_the_template_parameters(parameters):
    (command,) = dry_run_script("run.sh")
    assert command.startswith("gcloud dataflow flex-template run streaming-ingest ")
    passed = run_parameters(command)
    assert set(passed) <= set(parameters)
    assert required_options() <= set(passed)
    for name, value in passed.items():
        for regex in parameters[name].get("regexes", []):
            assert re.search(regex, value), (name, value)


def test_the_run_script_updates_the_running_job_by_name():
    (command,) = dry_run_script(
        "run.sh",
        "--update",
        "--transform-name-mappings",
        "Old=New",
        "--",
        "--worker-machine-type",
        "n2-standard-2",
    )
    words = command.split()
    assert words[:5] == ["gcloud", "dataflow", "flex-template", "run", "streaming-ingest"]
    assert "--update" in words
    assert words[words.index("--transform-name-mappings") + 1] == "Old=New"
    assert words[-2:] == ["--worker-machine-type", "n2-standard-2"]


def test_the_build_script_builds_the_image_and_the_spec():
    commands = dry_run_script("build.sh", "--tag", "v1")
    image = "europe-west1-docker.pkg.dev/demo-project/streaming-ingest/streaming-ingest-launcher:v1"
    assert commands[0].startswith(
        f"gcloud builds submit {REPO} --config {TEMPLATES / 'cloudbuild.yaml'} "
    )
    assert f"_IMAGE={image}" in commands[0]
    assert commands[1].startswith(
        "gcloud dataflow flex-template build "
        f"gs://demo-project-ingest-dataflow/templates/streaming-ingest-v1.json --image {image} "
        f"--sdk-language PYTHON --metadata-file {TEMPLATES / 'metadata.json'}"
    )


def test_gcloud_accepts_every_command_the_scripts_print(offline_gcloud):
    commands = [
        command
        for script, args in [
            ("provision.sh", ()),
            ("build.sh", ()),
            ("run.sh", ("--update", "--transform-name-mappings", "Old=New")),
        ]
        for command in dry_run_script(script, *args)
        if command.startswith("gcloud ")
    ]

    def parse(command):
        # The scripts print commands quoted for bash: let bash split them.
        return subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=offline_gcloud, timeout=120
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(parse, commands))
    assert len(commands) >= 20
    for command, result in zip(commands, results, strict=True):
        # Flags parsed: it stopped at the missing account, before any request.
        assert "You do not currently have an active account selected" in result.stderr, (
            command,
            result.stderr[-2000:],
        )


def test_the_dockerfile_follows_the_flex_template_conventions():
    dockerfile = (TEMPLATES / "Dockerfile").read_text()
    assert re.search(
        r"^ARG BASE_IMAGE=gcr\.io/dataflow-templates-base/"
        r"python311-template-launcher-base$",
        dockerfile,
        re.M,
    )
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    workdir = re.search(r"^ARG WORKDIR=(\S+)$", dockerfile, re.M)[1]
    environment = dict(re.findall(r'^ENV (\w+)="\$\{WORKDIR\}/([^"]+)"$', dockerfile, re.M))
    assert environment == {
        "FLEX_TEMPLATE_PYTHON_PY_FILE": "pipelines/streaming_ingest.py",
        "FLEX_TEMPLATE_PYTHON_SETUP_FILE": "setup.py",
    }
    copied = [
        word for line in re.findall(r"^COPY (.+)$", dockerfile, re.M) for word in line.split()[:-1]
    ]
    assert {
        "pyproject.toml",
        "setup.py",
        "README.md",
        "pipelines",
        "transforms",
        "domain",
        "ingest",
    } <= set(copied)
    for source in copied:  # the build context is the repository root
        assert (REPO / source).exists(), source
    assert "RUN pip install --no-cache-dir ." in dockerfile
    assert workdir == "/template"
    cloudbuild = (TEMPLATES / "cloudbuild.yaml").read_text()
    assert '"-f", "templates/Dockerfile"' in cloudbuild


# -- the sdist and the wheel, installed in a fresh virtual environment -----------------


@dataclass
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    from_wheel: dict  # command -> CompletedProcess, run with the wheel installed
    from_sdist: dict  # the same, with the sdist installed over it


def run_checked(command, **kwargs):
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    return result


def copy_source_tree(target):
    """The work tree as git sees it (tracked files and new ones, not the ignored)."""
    listed = run_checked(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """Builds the sdist, then the wheel from the sdist (as `python -m build` does), in a
    copy of the work tree; installs the wheel in a new virtual environment, runs the
    commands, then installs the sdist over it and runs them again. pip reaches PyPI only."""
    work = tmp_path_factory.mktemp("package")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    environment["PIP_NO_INPUT"] = "1"
    copy_source_tree(work / "source")
    run_checked(
        [sys.executable, "-m", "build", "--outdir", work / "dist", work / "source"],
        env=environment,
        timeout=900,
    )
    (sdist,) = (work / "dist").glob("*.tar.gz")
    (wheel,) = (work / "dist").glob("*.whl")
    venv = work / "venv"
    run_checked([sys.executable, "-m", "venv", venv], env=environment, timeout=300)
    python = venv / "bin" / "python"

    def commands():
        # Run from outside the work tree, so only the installed package can be imported.
        return {
            name: subprocess.run(
                [str(part) for part in command],
                capture_output=True,
                text=True,
                cwd=work,
                env=environment,
                timeout=300,
            )
            for name, command in {
                "help": [python, "-m", "pipelines.streaming_ingest", "--help"],
                "ingest": [venv / "bin" / "ingest", "--help"],
                "where": [
                    python,
                    "-c",
                    "import pipelines.streaming_ingest, transforms, "
                    "domain, ingest; print(pipelines.streaming_ingest.__file__)",
                ],
            }.items()
        }

    run_checked([python, "-m", "pip", "install", wheel], env=environment, timeout=1500)
    from_wheel = commands()
    run_checked(
        [python, "-m", "pip", "install", "--no-deps", "--force-reinstall", sdist],
        env=environment,
        timeout=900,
    )
    return Installed(sdist, wheel, venv, from_wheel, commands())


def check_installed_commands(results, venv_root):
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-3000:])
    assert Path(results["where"].stdout.strip()).is_relative_to(venv_root)
    for option in pipeline_options():
        assert f"--{option}" in results["help"].stdout
    assert "bootstrap" in results["ingest"].stdout


@pytest.mark.timeout(1800)
def test_the_sdist_holds_the_packages_and_setup_py(installed):
    with tarfile.open(installed.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {"setup.py", "pyproject.toml", "README.md"} | {
        str(path.relative_to(REPO))
        for package in ("pipelines", "transforms", "domain", "ingest")
        for path in (REPO / package).rglob("*.py")
    }
    assert expected <= names, expected - names


@pytest.mark.timeout(1800)
def test_the_wheel_installs_and_the_pipeline_answers_help(installed):
    with zipfile.ZipFile(installed.wheel) as archive:
        metadata = next(
            archive.read(name).decode()
            for name in archive.namelist()
            if name.endswith(".dist-info/METADATA")
        )
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requirements and not [line for line in requirements if " @ " in line]  # PyPI only
    check_installed_commands(installed.from_wheel, installed.venv)


@pytest.mark.timeout(1800)
def test_the_sdist_installs_and_the_pipeline_answers_help(installed):
    check_installed_commands(installed.from_sdist, installed.venv)
