"""The tree is as ruff, configured in pyproject.toml, would have it: lint and format."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def ruff(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_ruff_finds_nothing_to_lint():
    result = ruff("check", "--output-format", "concise")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_ruff_finds_nothing_to_format():
    result = ruff("format", "--check")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
