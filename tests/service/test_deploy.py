"""The service's Cloud Run deployment, checked offline (templates/service.Dockerfile,
templates/deploy_service.sh): no Docker engine and no Google Cloud here, so the image is
never built. What is checked instead: the files the Dockerfile copies exist and build the
package with the browser client in it; the image's command, run outside the image,
serves; and the commands the script prints with --dry-run, which gcloud itself parses."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import zipfile

import httpx
import pytest

from pubsub_helpers import pull_messages
from tests.service.conftest import EXAMPLE_CATALOG, INSTANCE, ROOT, SERVER_KEY, free_port

TEMPLATES = ROOT / "templates"
DOCKERFILE = TEMPLATES / "service.Dockerfile"
SCRIPT = TEMPLATES / "deploy_service.sh"
ACCOUNT = "ingest-service@demo-project.iam.gserviceaccount.com"


def instructions(name):
    """The Dockerfile's instructions `name` (COPY, ENV, CMD), their lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


def image_environment():
    environment = {}
    for instruction in instructions("ENV"):
        environment.update(word.split("=", 1) for word in shlex.split(instruction))
    return environment


def copied_sources():
    return [s for line in instructions("COPY") for s in shlex.split(line)[:-1]]


def test_every_file_the_dockerfile_copies_is_in_the_repository_and_sent_to_cloud_build():
    ignored = {
        line.rstrip("/")
        for line in (TEMPLATES / ".gcloudignore").read_text().splitlines()
        if line and not line.startswith("#")
    }
    sources = copied_sources()
    assert {"service", "domain", "ingest", "pyproject.toml"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source not in ignored, source
    assert '"templates/service.Dockerfile"' in (TEMPLATES / "service.cloudbuild.yaml").read_text()


def test_what_the_dockerfile_copies_builds_a_wheel_with_the_browser_client(tmp_path):
    context = tmp_path / "context"  # the build context as the image sees it
    for source in copied_sources():
        target = context / source
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, target)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            "dist",
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = (context / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "service/static/ingest.js" in names
    assert {"service/app.py", "ingest/commands/serve.py", "domain/parsing.py"} <= set(names)


def test_the_image_s_command_serves_and_stops_on_sigterm(inlet_resources, tmp_path):
    [command] = instructions("CMD")
    port = free_port()
    environment = {
        **os.environ,
        **image_environment(),
        # outside the image: this checkout's catalog, the test's topic and table
        "PORT": str(port),
        "INGEST_CATALOG": EXAMPLE_CATALOG,
        "INGEST_TOPIC": inlet_resources["topic"],
        "INGEST_INSTANCE": INSTANCE,
        "INGEST_TABLE": inlet_resources["table"],
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    assert command.startswith('exec ingest serve --host 0.0.0.0 --port "$PORT"')
    log = open(tmp_path / "image.log", "wb")
    process = subprocess.Popen(["sh", "-c", command], env=environment, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "image.log").read_text()
            subprocess.run(["sleep", "0.2"])
        script = httpx.get(url + "/static/ingest.js", timeout=10)
        answer = httpx.post(
            url + "/collection/crm-sync",
            content=(ROOT / "examples" / "records.jsonl").read_bytes().splitlines()[0],
            headers={"x-api-key": SERVER_KEY, "content-type": "application/json"},
            timeout=30,
        )
        [message] = pull_messages(inlet_resources["subscription_path"], expected_count=1)
    finally:
        process.send_signal(signal.SIGTERM)  # `exec`: the signal reaches ingest itself
        returncode = process.wait(timeout=30)
    assert script.status_code == 200 and "StreamingIngest" in script.text
    assert answer.status_code == 200, answer.text
    assert message.message_id == answer.json()["xactionId"]
    # A clean stop on SIGTERM is a success (Cloud Run expects 0), not death by the signal.
    log_text = (tmp_path / "image.log").read_text()
    assert returncode == 0, log_text
    assert "Application shutdown complete" in log_text


def dry_run(*args):
    result = subprocess.run(
        ["bash", str(SCRIPT), "--project", "demo-project", "--region", "europe-west1"]
        + ["--tag", "t1", "--dry-run", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines()]


def flag(words, name):
    return words[words.index(name) + 1]


def test_help_lists_every_option_the_script_takes():
    result = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    taken = set(re.findall(r"^\s+(--[a-z-]+)\)", SCRIPT.read_text(), re.MULTILINE))
    assert len(taken) >= 12
    for option in taken:
        assert re.search(rf"^  {option}\b", result.stdout, re.MULTILINE), option


def test_the_dry_run_builds_the_image_and_deploys_it_with_the_pipeline_s_resources():
    commands = dry_run()
    image = "europe-west1-docker.pkg.dev/demo-project/streaming-ingest/ingest-service:t1"
    [build] = [c for c in commands if c[:3] == ["gcloud", "builds", "submit"]]
    assert flag(build, "--config") == str(TEMPLATES / "service.cloudbuild.yaml")
    assert flag(build, "--substitutions") == f"_IMAGE={image}"
    [deploy] = [c for c in commands if c[:3] == ["gcloud", "run", "deploy"]]
    assert deploy[3] == "ingest-service" and flag(deploy, "--image") == image
    assert flag(deploy, "--service-account") == ACCOUNT
    assert "--allow-unauthenticated" in deploy  # browsers: the connections decide
    assert dict(v.split("=", 1) for v in flag(deploy, "--set-env-vars").split(",")) == {
        "GOOGLE_CLOUD_PROJECT": "demo-project",
        "INGEST_CATALOG": "gs://demo-project-ingest-dataflow/catalog/catalog.yaml",
        "INGEST_TOPIC": "projects/demo-project/topics/ingest-input",
        "INGEST_INSTANCE": "ingest-instance",
        "INGEST_TABLE": "profiles",
    }
    assert set(image_environment()) >= {"INGEST_CATALOG", "INGEST_TOPIC", "INGEST_TABLE"}


def test_private_and_a_given_image_change_the_deploy_only():
    commands = dry_run("--private", "--image", "example/ingest:1", "--", "--ingress", "internal")
    assert not [c for c in commands if c[:3] == ["gcloud", "builds", "submit"]]
    [deploy] = [c for c in commands if c[:3] == ["gcloud", "run", "deploy"]]
    assert flag(deploy, "--image") == "example/ingest:1"
    assert "--no-allow-unauthenticated" in deploy and "--allow-unauthenticated" not in deploy
    assert deploy[-2:] == ["--ingress", "internal"]


def test_the_service_account_gets_only_what_the_service_uses():
    grants = {
        (" ".join(c[1 : c.index("--member")]), flag(c, "--member"), flag(c, "--role"))
        for c in dry_run()
        if "add-iam-policy-binding" in c[3]
    }
    member = f"serviceAccount:{ACCOUNT}"
    assert grants == {
        ("pubsub topics add-iam-policy-binding ingest-input", member, "roles/pubsub.publisher"),
        (
            "bigtable instances add-iam-policy-binding ingest-instance",
            member,
            "roles/bigtable.reader",
        ),
        (
            "storage buckets add-iam-policy-binding gs://demo-project-ingest-dataflow",
            member,
            "roles/storage.objectViewer",
        ),
    }


def test_gcloud_takes_every_command_the_dry_run_prints(tmp_path):
    """gcloud parses each command's flags, then stops for want of an account: a misspelt
    flag is exit 2 (unrecognized arguments) before that."""
    if shutil.which("gcloud") is None:
        pytest.fail("needs the Google Cloud CLI (gcloud), as the emulators do", pytrace=False)
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CLOUDSDK_", "GOOGLE_"))
    }
    environment.update(
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
        CLOUDSDK_CORE_CHECK_GCE_METADATA="false",
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
        CLOUDSDK_PROXY_TYPE="http",  # a proxy that refuses: nothing leaves the machine
        CLOUDSDK_PROXY_ADDRESS="127.0.0.1",
        CLOUDSDK_PROXY_PORT="9",
    )
    for command in dry_run():
        result = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 1 and "active account" in result.stderr, (
            command,
            result.stderr,
        )
