"""Each package keeps its one rule, read off the code's own imports.

- domain/: plain Python; of Beam only its FileSystems (so gs:// reads like a folder);
- transforms/: Beam adapters over the domain, never the pipeline or the CLI;
- ingest/ (the CLI): never a Beam transform module nor the pipeline; of service/ only
  its command `serve`;
- service/ (HTTP): the domain and the CLI's helpers, never a transform, the pipeline nor a
  command; the web stack (FastAPI, Starlette, uvicorn) is imported nowhere else;
- no import cycles between the project's modules, and no module past 450 lines.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "transforms", "pipelines", "ingest", "service")
WEB_STACK = ("fastapi", "starlette", "uvicorn")
MAX_MODULE_LINES = 450


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports_of(path):
    """Every module the file imports, at any depth (a local import counts too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def project_imports(path, known):
    return {name for name in imports_of(path) if name in known and name != module_name(path)}


def test_the_rules_see_every_package():
    names = modules()
    for package in PACKAGES:
        assert any(name.startswith(package + ".") for name in names), package
    assert imports_of(ROOT / "pipelines" / "streaming_ingest.py") >= {
        "apache_beam",
        "transforms.read",
    }


def test_the_domain_knows_no_beam_but_its_file_systems():
    for name, path in modules().items():
        if not name.startswith("domain"):
            continue
        beam = {i for i in imports_of(path) if i.split(".")[0] == "apache_beam"}
        assert beam <= {"apache_beam.io.filesystems", "apache_beam.io.filesystems.FileSystems"}, (
            name,
            beam,
        )
        others = {i.split(".")[0] for i in imports_of(path)} & {
            "transforms",
            "pipelines",
            "ingest",
            "service",
        }
        assert not others, (name, others)


def test_transforms_import_neither_the_pipeline_nor_the_cli():
    for name, path in modules().items():
        if name.startswith("transforms"):
            wrong = {i for i in imports_of(path) if i.split(".")[0] in ("pipelines", "ingest")}
            assert not wrong, (name, wrong)


def test_the_cli_imports_no_beam_transform_and_not_the_pipeline():
    for name, path in modules().items():
        if name.startswith("ingest"):
            wrong = {i for i in imports_of(path) if i.split(".")[0] in ("transforms", "pipelines")}
            assert not wrong, (name, wrong)


def test_only_the_serve_command_imports_the_service():
    for name, path in modules().items():
        if name.startswith(("ingest", "transforms", "pipelines")):
            wrong = {i for i in imports_of(path) if i.split(".")[0] == "service"}
            assert name == "ingest.commands.serve" or not wrong, (name, wrong)


def test_the_service_imports_domain_and_the_cli_helpers_only():
    for name, path in modules().items():
        if not name.startswith("service"):
            continue
        found = imports_of(path)
        wrong = {i for i in found if i.split(".")[0] in ("transforms", "pipelines")}
        wrong |= {
            i for i in found if i.split(".")[:2] in (["ingest", "commands"], ["ingest", "cli"])
        }
        assert not wrong, (name, wrong)


def test_the_web_stack_lives_in_the_service_only():
    for name, path in modules().items():
        if not name.startswith("service"):
            web = {i for i in imports_of(path) if i.split(".")[0] in WEB_STACK}
            assert not web, (name, web)


def test_no_import_cycles():
    known = modules()
    graph = {name: project_imports(path, known) for name, path in known.items()}
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_no_module_is_longer_than_a_module_should_be():
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long
