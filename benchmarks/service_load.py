"""The HTTP inlet under load from a real load tool (wrk, Debian's `wrk`), against the
Pub/Sub emulator, beside publishing the same messages straight to the emulator with the
Pub/Sub client library in the same run (issue #15, item 7).

The service (`ingest serve`) is pinned to CPU 0, alone; wrk and the emulator share CPU 1
(`taskset`), so "one core" is the service's. wrk is closed-loop: each of its connections
sends its next request when the last is answered, so a run measures the throughput at that
concurrency with its latency, the service's core as busy as that loop makes it. The paced
runs send at a fixed rate with hey (Debian's `hey`, -q), the targets' rates by default, so
their p99 is the p99 at that rate. An answer is 200 (207 for a batch) only once Pub/Sub
confirmed every message, so every 2xx counted is on the topic. The topic has no
subscription (the emulator keeps nothing; Pub/Sub does the same). Target: 1,000 requests/s
single and 10,000 messages/s batched at p99 <= 50 ms on one core.
"""

import argparse
import collections
import csv
import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from benchmarks.harness import (
    ROOT,
    argument_parser,
    describe_machine,
    nearest_rank,
    print_rows,
    process_cpu_seconds,
    progress,
    show,
)
from ingest.dev import local_stack

SERVICE_CPU, LOAD_CPU = "0", "1"
KEY = "demo-key-change-me"  # crm-sync's demo key in examples/catalog.yaml
MESSAGE = (ROOT / "examples" / "records.jsonl").read_bytes().splitlines()[0]  # crm-profiles
PROJECT = "demo-project"
# wrk's script: the body from a file, then one JSON line of figures. response() counts
# what a 2xx may still hold: a batch's per-message failures ("statusCode" entries).
WRK_SCRIPT = r"""
local file = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) failed = 0; not_ok = 0 end
function response(status, headers, body)
  if status ~= 200 and status ~= 207 then not_ok = not_ok + 1 end
  local _, n = string.gsub(body, '"statusCode"', "")
  failed = failed + n
end
function done(summary, latency, requests)
  local failed_total, not_ok_total = 0, 0
  for _, thread in ipairs(threads) do
    failed_total = failed_total + thread:get("failed")
    not_ok_total = not_ok_total + thread:get("not_ok")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "socket_errors": %d, "not_ok": %d, ' ..
    '"failed_messages": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    not_ok_total, failed_total, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def pin_tree(pid, cpu):
    """Pins a process, all its threads and its children's, to `cpu` (taskset -a)."""
    subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(pid)], capture_output=True, check=True)
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            pin_tree(int(child), cpu)


def start_service(work, topic, env):
    port = free_port()
    log = open(work / "serve.log", "wb")
    command = ["taskset", "-c", SERVICE_CPU, sys.executable, "-m", "ingest", "serve"]
    command += ["--port", str(port), "--topic", topic, "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if process.poll() is not None:
            sys.exit(f"ingest serve exited:\n{(work / 'serve.log').read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    sys.exit("ingest serve did not start")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_wrk(work, url, body, connections, seconds, service_pid):
    (work / "body.json").write_bytes(body)
    (work / "bench.lua").write_text(WRK_SCRIPT)
    env = {**os.environ, "BENCH_BODY": str(work / "body.json"), "BENCH_KEY": KEY}
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    command += ["--timeout", "10s", "-s", str(work / "bench.lua"), url]
    cpu_before = process_cpu_seconds(service_pid)
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    cpu = process_cpu_seconds(service_pid) - cpu_before
    [line] = [line for line in result.stdout.splitlines() if line.startswith("BENCH ")]
    figures = json.loads(line[len("BENCH ") :])
    figures["service_cpu_seconds"] = round(cpu, 2)
    figures["requests_per_second"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def run_hey(work, url, body, rate, workers, seconds, service_pid):
    """`rate` requests a second for `seconds`, from `workers` keep-alive connections at
    rate / workers each (hey -q); latencies from hey's CSV, one row per answer."""
    (work / "paced.json").write_bytes(body)
    command = ["taskset", "-c", LOAD_CPU, "hey", "-z", f"{seconds}s", "-c", str(workers)]
    command += ["-q", f"{rate / workers:g}", "-m", "POST", "-T", "application/json"]
    command += ["-H", f"x-api-key: {KEY}", "-D", str(work / "paced.json"), "-o", "csv", url]
    cpu_before = process_cpu_seconds(service_pid)
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    cpu = process_cpu_seconds(service_pid) - cpu_before
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    latencies = sorted(float(row["response-time"]) for row in rows)
    statuses = collections.Counter(row["status-code"] for row in rows)
    return {
        "rate_asked": rate,
        "requests": len(rows),
        "requests_per_second": len(rows) / seconds,
        "not_ok": sum(n for status, n in statuses.items() if status not in ("200", "207")),
        "p50_us": round(nearest_rank(latencies, 0.5) * 1e6),
        "p90_us": round(nearest_rank(latencies, 0.9) * 1e6),
        "p99_us": round(nearest_rank(latencies, 0.99) * 1e6),
        "max_us": round(latencies[-1] * 1e6),
        "service_cpu_seconds": round(cpu, 2),
    }


def direct_publish(topic_path, count):
    """Runs in its own process on the service's CPU: `count` messages through one
    PublisherClient (its default batching), all awaited."""
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    client.publish(topic_path, MESSAGE, connectionId="crm-sync").result(timeout=30)  # warm
    cpu, start = time.process_time(), time.perf_counter()
    futures = [client.publish(topic_path, MESSAGE, connectionId="crm-sync") for _ in range(count)]
    for future in futures:
        future.result(timeout=120)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"messages": count, "seconds": seconds, "cpu_seconds": time.process_time() - cpu}
        )
    )


def measure_direct(topic_path, count, env):
    command = ["taskset", "-c", SERVICE_CPU, sys.executable, "-m", "benchmarks.service_load"]
    command += ["--direct", str(count), "--topic-path", topic_path]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout.splitlines()[-1])
    figures["messages_per_second"] = figures["messages"] / figures["seconds"]
    return figures


def measure(options):
    work = pathlib.Path(tempfile.mkdtemp(prefix="service-load-"))
    machine = describe_machine()
    stack = local_stack.start(work / "stack", pubsub_port=0, bigtable_port=0)
    try:
        env = {**os.environ, **local_stack.environment(stack, PROJECT), "PYTHONPATH": str(ROOT)}
        os.environ.update(local_stack.environment(stack, PROJECT))
        pin_tree(stack.pubsub.pid, LOAD_CPU)
        topic = "load-input"
        _create_topic(topic)
        topic_path = f"projects/{PROJECT}/topics/{topic}"
        service, url = start_service(work, topic, env)
        try:
            progress("warm-up")
            run_wrk(
                work, url + "/collection/crm-sync", MESSAGE, options.connections, 3, service.pid
            )
            progress(f"single messages, {options.connections} connections, {options.seconds} s")
            single = run_wrk(
                work,
                url + "/collection/crm-sync",
                MESSAGE,
                options.connections,
                options.seconds,
                service.pid,
            )
            batch_body = json.dumps({"messages": [json.loads(MESSAGE)] * options.batch}).encode()
            progress(f"batches of {options.batch}, {options.batch_connections} connections")
            batched = run_wrk(
                work,
                url + "/collection/batch/crm-sync",
                batch_body,
                options.batch_connections,
                options.seconds,
                service.pid,
            )
            batched["messages_per_second"] = batched["requests_per_second"] * options.batch
            paced = {}
            if options.rate and shutil.which("hey"):
                progress(f"paced: {options.rate} single messages/s, hey")
                paced["single"] = run_hey(
                    work,
                    url + "/collection/crm-sync",
                    MESSAGE,
                    options.rate,
                    options.connections,
                    options.seconds,
                    service.pid,
                )
                progress(f"paced: {options.batch_rate} batches of {options.batch}/s, hey")
                paced["batched"] = run_hey(
                    work,
                    url + "/collection/batch/crm-sync",
                    batch_body,
                    options.batch_rate,
                    options.batch_connections,
                    options.seconds,
                    service.pid,
                )
                paced["batched"]["messages_per_second"] = (
                    paced["batched"]["requests_per_second"] * options.batch
                )
        finally:
            service.terminate()
            service.wait(timeout=30)
        progress(f"direct publish of {options.direct_messages} messages, client library")
        direct = measure_direct(topic_path, options.direct_messages, env)
    finally:
        local_stack.stop(work / "stack")
        shutil.rmtree(work, ignore_errors=True)
    machine["load_average_after"] = round(os.getloadavg()[0], 2)
    return {
        "command": "python -m benchmarks.service_load " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "message_bytes": len(MESSAGE),
        "batch_size": options.batch,
        "single": single,
        "batched": batched,
        "paced": paced,
        "direct": direct,
        "ratio_single_to_direct": single["requests_per_second"] / direct["messages_per_second"],
        "ratio_batched_to_direct": batched["messages_per_second"] / direct["messages_per_second"],
    }


def _create_topic(topic):
    from google.cloud import pubsub_v1

    pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/{topic}")


def latency_text(f):
    ms = {k: f[f"{k}_us"] / 1000 for k in ("p50", "p90", "p99", "max")}
    return "p50 {p50:.1f} ms, p90 {p90:.1f}, p99 {p99:.1f}, max {max:.1f}".format(**ms)


def failures_text(f):
    return (
        f"{f['not_ok']} not 2xx, {f['failed_messages']} messages refused, "
        f"{f['socket_errors']} socket errors; service CPU {f['service_cpu_seconds']} s"
    )


def print_table(figures):
    single, batched, direct = figures["single"], figures["batched"], figures["direct"]
    machine = figures["machine"]
    load = f"{machine['load_average_before']} before, {machine['load_average_after']} after"
    print_rows(
        "HTTP inlet under wrk, the service on one CPU, against the Pub/Sub emulator",
        [
            ("command", figures["command"]),
            ("date", figures["date"]),
            ("machine", f"nproc {machine['nproc']}, load average {load}"),
            ("message", f"{figures['message_bytes']} bytes, Adobe's envelope (crm-sync)"),
            ("single", f"{single['requests_per_second']:,.0f} requests/s"),
            ("", f"{latency_text(single)}; {failures_text(single)}"),
            (
                "batched",
                f"{batched['messages_per_second']:,.0f} messages/s "
                f"({batched['requests_per_second']:,.1f} batches of {figures['batch_size']}/s)",
            ),
            ("", f"{latency_text(batched)}; {failures_text(batched)}"),
            *paced_rows(figures),
            (
                "direct",
                f"{direct['messages_per_second']:,.0f} messages/s, the client library "
                f"({direct['messages']:,} in {direct['seconds']:.2f} s, "
                f"CPU {direct['cpu_seconds']:.2f} s)",
            ),
            (
                "ratio",
                f"single / direct {figures['ratio_single_to_direct']:.2f}, "
                f"batched / direct {figures['ratio_batched_to_direct']:.2f}",
            ),
        ],
    )


def paced_rows(figures):
    paced = figures["paced"]
    if not paced:
        return [("paced", "not run (--rate 0, or no hey: apt-get install hey)")]
    single, batched = paced["single"], paced["batched"]
    return [
        (
            "paced single",
            f"{single['requests_per_second']:,.0f} requests/s of {single['rate_asked']:,} "
            f"asked (hey); {latency_text(single)}; {single['not_ok']} not 2xx, "
            f"service CPU {single['service_cpu_seconds']} s",
        ),
        (
            "paced batched",
            f"{batched['messages_per_second']:,.0f} messages/s "
            f"({batched['requests_per_second']:,.1f} of {batched['rate_asked']:,} batches/s "
            f"asked); {latency_text(batched)}; "
            f"{batched['not_ok']} not 2xx, service CPU {batched['service_cpu_seconds']} s",
        ),
    ]


def main(argv=None):
    parser = argument_parser("service_load", __doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections, single")
    parser.add_argument("--batch", type=int, default=100, help="messages per batch")
    parser.add_argument("--batch-connections", type=int, default=4, help="wrk connections, batched")
    parser.add_argument(
        "--rate", type=int, default=1000, help="paced single requests/s with hey (0: none)"
    )
    parser.add_argument("--batch-rate", type=int, default=100, help="paced batches/s with hey")
    parser.add_argument("--direct-messages", type=int, default=50000, help="direct publish count")
    parser.add_argument("--direct", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--topic-path", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.direct:
        return direct_publish(options.topic_path, options.direct)
    if shutil.which("wrk") is None:
        sys.exit("needs wrk: apt-get install wrk")
    show(measure(options), options.json, print_table)


if __name__ == "__main__":
    main()
