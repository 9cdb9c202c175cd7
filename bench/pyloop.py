"""The other ceiling: a scoring script's run() called in a plain Python loop, no HTTP.

Usage: python pyloop.py SCRIPT BODY_FILE SECONDS

Each call does the least any server must do for an undecorated run(data): decode
the body bytes as UTF-8 text, call run(), JSON-encode what it returned. Prints one
JSON object: calls, seconds, calls_per_s, per_call_us (mean) and median_call_us
(median over batches of calls: steadier on a shared 2-core box, and what the server's
p50 latency is compared with). Runs under the same interpreter the servers use, so
the figures are comparable.
"""
import importlib.util
import json
import statistics
import sys
import time


def load_script(path):
    spec = importlib.util.spec_from_file_location("bench_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    script_path, body_path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    module = load_script(script_path)
    module.init()
    with open(body_path, "rb") as body_file:
        body = body_file.read()

    run = module.run
    # A few untimed calls first: the first ones pay for imports, caches and the heap growing.
    warmup_deadline = time.perf_counter() + seconds / 10
    while time.perf_counter() < warmup_deadline:
        json.dumps(run(body.decode("utf-8")))

    calls = 0
    batch_call_us = []
    started = time.perf_counter()
    deadline = started + seconds
    # Read the clock once per batch only, so the loop measures run(), not perf_counter().
    batch = 1 if len(body) > 100_000 else 1000
    while time.perf_counter() < deadline:
        batch_started = time.perf_counter()
        for _ in range(batch):
            json.dumps(run(body.decode("utf-8")))
        batch_call_us.append((time.perf_counter() - batch_started) / batch * 1e6)
        calls += batch
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "calls": calls,
        "seconds": elapsed,
        "calls_per_s": calls / elapsed,
        "per_call_us": elapsed / calls * 1e6,
        "median_call_us": statistics.median(batch_call_us),
    }))


if __name__ == "__main__":
    main()
