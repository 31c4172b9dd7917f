"""What domain/json_codec.py (orjson) saves: µs per record of decoding a message and of
the canonical encoding merge.order_key hashes, stdlib json against orjson, on messages
from ingest.dev.generate.

    python -m benchmarks.json_codec_cost [--records N] [--runs N] [--seed S]

The correctness side (orjson's answers, where used, are exactly json's) is tested in
tests/domain/test_json_codec.py; this is only the timing.
"""

import argparse
import json
import statistics
import time
from unittest import mock

import orjson

from benchmarks.harness import ROOT
from domain import json_codec
from domain.catalog import Catalog
from domain.parsing import RecordParser, _decode_json
from domain.records import RecordError

CATALOG = ROOT / "examples" / "catalog.yaml"
# The stdlib encoder with the canonical options (what the codec must agree with).
REFERENCE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def no_fast_path(payload):
    return None


def generated(count, seed):
    from ingest.dev.generate import RecordGenerator

    return [
        (m.payload, m.dataset)
        for m in RecordGenerator(seed=seed, duplicate_share=0).messages(count)
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.json_codec_cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args(argv)
    messages = generated(options.records, options.seed)
    record_parser = RecordParser(Catalog.load(str(CATALOG)))
    values = []
    for payload, dataset in messages:
        try:
            record = record_parser.parse(payload, {"dataset": dataset})
        except RecordError:
            continue
        values.append([record.dataset, record.entity])  # what merge.order_key encodes

    def per_record(function, inputs):
        times = []
        for _ in range(options.runs):
            start = time.perf_counter()
            for item in inputs:
                try:
                    function(item)
                except (RecordError, ValueError):  # invalid messages
                    pass
            times.append((time.perf_counter() - start) / len(inputs) * 1e6)
        return statistics.median(times)

    def dumps(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

    def reference(value):
        return REFERENCE.encode(value).encode("utf-8")

    payloads = [payload for payload, _ in messages]
    with mock.patch.object(json_codec, "decode", no_fast_path):
        decode_json = per_record(_decode_json, payloads)
    size = sum(map(len, payloads)) / len(payloads)
    print(
        f"{len(payloads)} generated messages (seed {options.seed}, {size:.0f} bytes on "
        f"average), {len(values)} records; median of {options.runs} runs, µs per record"
    )
    print(
        f"decode     json {decode_json:5.2f}  orjson {per_record(_decode_json, payloads):5.2f}"
        f"  (orjson.loads alone {per_record(orjson.loads, payloads):5.2f})"
    )
    print(
        f"canonical  json {per_record(reference, values):5.2f}  orjson "
        f"{per_record(json_codec.canonical, values):5.2f}  (orjson.dumps alone "
        f"{per_record(dumps, values):5.2f})"
    )


if __name__ == "__main__":
    main()
