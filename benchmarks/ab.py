"""One benchmark on two source trees, back to back: before, after, before, after...

    python -m benchmarks.ab --before TREE --after TREE [--pairs N] [--figure PATH ...]
        [--save DIR] [--json] -- BENCHMARK [ITS ARGUMENTS]

Runs `python -m benchmarks.BENCHMARK ITS ARGUMENTS --json` in each tree in turn (its
working directory, and PYTHONPATH, the tree; the same interpreter), N pairs, strictly
alternating (before then after in each pair), and reads each run's figures from its JSON.
For each figure (a dotted path into that JSON, e.g. results.beam.events_per_cpu_second or
latency_ms.p99): the value of every run, after / before of every pair, and the median,
lowest and highest of those ratios. The 1-minute load average is noted before and after
each run: the machine is shared, so a figure is only compared with its pair's. With
--save, each run's JSON is kept there (`<pair>-<before|after>.json`).
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys

from benchmarks import harness


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = parse_arguments(argv)
    if options.save:
        options.save.mkdir(parents=True, exist_ok=True)
    runs = []
    for pair in range(1, options.pairs + 1):
        for side in ("before", "after"):
            tree = getattr(options, side)
            harness.progress(f"Pair {pair} of {options.pairs}, {side}: {tree}")
            load_before = round(os.getloadavg()[0], 2)
            output = subprocess.run(
                [sys.executable, "-m", f"benchmarks.{options.benchmark}", *options.arguments]
                + ["--json"],
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
            figures = json.loads(output[output.index("{") :])
            if options.save:
                (options.save / f"{pair}-{side}.json").write_text(json.dumps(figures, indent=2))
            runs.append(
                {
                    "pair": pair,
                    "side": side,
                    "load_average_before": load_before,
                    "load_average_after": round(os.getloadavg()[0], 2),
                    "figures": {path: lookup(figures, path) for path in options.figure},
                }
            )
    summary = {
        "command": harness.command_line("ab", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "before": str(options.before),
        "after": str(options.after),
        "before_code": describe_tree(options.before),
        "after_code": describe_tree(options.after),
        "benchmark": [options.benchmark, *options.arguments],
        "runs": runs,
        "ratios": ratios(runs, options.figure),
    }
    harness.show(summary, options.json, print_table)


def parse_arguments(argv):
    parser = harness.argument_parser(
        "ab", "One benchmark on two source trees, back to back, alternating."
    )
    parser.add_argument("--before", type=pathlib.Path, required=True, help="the tree before")
    parser.add_argument("--after", type=pathlib.Path, required=True, help="the tree after")
    parser.add_argument("--pairs", type=int, default=3, help="before/after pairs")
    parser.add_argument(
        "--figure",
        action="append",
        required=True,
        help="a dotted path into the benchmark's JSON; may be given more than once",
    )
    parser.add_argument("--save", type=pathlib.Path, help="a folder to keep each run's JSON in")
    parser.add_argument("benchmark", help="the module under benchmarks/, e.g. worker_path")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the benchmark's arguments")
    options = parser.parse_args(argv)
    if options.pairs < 1:
        parser.error("--pairs must be at least 1")
    options.before, options.after = options.before.resolve(), options.after.resolve()
    if options.arguments[:1] == ["--"]:
        options.arguments = options.arguments[1:]
    return options


def lookup(figures, path):
    value = figures
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def ratios(runs, paths):
    result = {}
    for path in paths:
        pairs = {}
        for run in runs:
            pairs.setdefault(run["pair"], {})[run["side"]] = run["figures"][path]
        each = [
            round(sides["after"] / sides["before"], 3)
            if isinstance(sides.get("after"), (int, float))
            and isinstance(sides.get("before"), (int, float))
            and sides["before"]
            else None
            for _, sides in sorted(pairs.items())
        ]
        known = [ratio for ratio in each if ratio is not None]
        result[path] = {
            "after_over_before": each,
            "median": statistics.median(known) if known else None,
            "lowest": min(known, default=None),
            "highest": max(known, default=None),
        }
    return result


def describe_tree(tree):
    """The tree's commit, and the files it has changed and not committed."""

    def git(*arguments):
        return subprocess.run(
            ["git", "-C", str(tree), *arguments], capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    changed = [line.split(maxsplit=1)[1] for line in status.splitlines()]
    if not changed:
        return commit
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return f"{commit} + uncommitted changes to {shown}"


def print_table(summary):
    rows = [
        ("command", summary["command"]),
        ("date", summary["date"]),
        ("before", f"{summary['before']} ({summary['before_code']})"),
        ("after", f"{summary['after']} ({summary['after_code']})"),
        ("benchmark", " ".join(summary["benchmark"])),
        ("", ""),
    ]
    for run in summary["runs"]:
        shown = ", ".join(f"{path} {value}" for path, value in run["figures"].items())
        rows.append(
            (
                f"{run['pair']} {run['side']}",
                f"{shown} (load {run['load_average_before']} -> {run['load_average_after']})",
            )
        )
    rows.append(("", ""))
    for path, ratio in summary["ratios"].items():
        rows.append(
            (
                "after/before",
                f"{path}: each pair {ratio['after_over_before']}; median {ratio['median']}, "
                f"range {ratio['lowest']}-{ratio['highest']}",
            )
        )
    harness.print_rows("Before and after, back to back", rows)


if __name__ == "__main__":
    main()
