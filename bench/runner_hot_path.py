"""The runner's cost per `score` request, without the HTTP server: µs per request.

Two modes (stdlib only):

- in-process (default): runner.serve() over in-memory streams, N hello-world `score`
  frames queued up front: the pure Python cost of one request, no syscalls;
- --pipe: `python runner.py` as a child over real pipes, fed by a writer thread that
  keeps --ahead requests in flight (the server pipelines the same way) while the main
  thread reads the answers: the cost with the syscalls.

    python3 bench/runner_hot_path.py [--frames N] [--repeat R] [--pipe [--ahead K]] [--prof]
                                     [--runner DIR]   (another runner/ folder, to compare)
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time

RUNNER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runner")

HELLO_SCRIPT = "def init():\n    pass\n\n\ndef run(data):\n    return {'message': 'Hello, World!'}\n"
BODY = b'{"a": 1}'


def frame(message, payload=b""):
    if payload:
        message = dict(message, payload=len(payload))
    return json.dumps(message).encode("utf-8") + b"\n" + payload


def opening_frames(script_path):
    load = {
        "entry_script": script_path, "app_root": os.path.dirname(script_path), "source_dir": None,
        "model_dir": None, "log_level": "INFO", "scoring_timeout_ms": 3600000,
    }
    return [
        frame({"jsonrpc": "2.0", "id": 1, "method": "load", "params": load}),
        frame({"jsonrpc": "2.0", "id": 2, "method": "init", "params": {}}),
    ]


def score_frame_template():
    # What the server sends for `wrk -s post.lua`: the request's headers and body.
    params = {
        "method": "POST", "path": "/score", "query": "",
        "headers": [["Host", "127.0.0.1:5920"], ["Content-Type", "application/json"], ["Content-Length", "8"]],
        "request_id": "5d0f0000-0000-0000-0000-<ID>",
    }
    text = frame({"jsonrpc": "2.0", "id": 999, "method": "score", "params": params}, BODY)
    return text.replace(b"%", b"%%").replace(b'"id": 999', b'"id": %d').replace(b"<ID>", b"%012d")


_SCORE_FRAME = score_frame_template()


def score_frame(request_id):
    return _SCORE_FRAME % (request_id, request_id)


def in_process(runner_dir, script_path, frames, profile):
    """µs per request of runner.serve() over in-memory streams."""
    sys.path.insert(0, runner_dir)
    from _azmlinfsrv_runner import serve as runner

    # A warm-up conversation first, so that imports are not timed; then load + init
    # (a few ms, spread over all the requests) and the requests.
    warm_up = b"".join(opening_frames(script_path) + [score_frame(3)])
    runner.serve(io.BufferedReader(io.BytesIO(warm_up)), io.BytesIO())
    data = b"".join(opening_frames(script_path) + [score_frame(3 + index) for index in range(frames)])
    rfile, wfile = io.BufferedReader(io.BytesIO(data)), io.BytesIO()
    started = time.perf_counter()
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(runner.serve, rfile, wfile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        runner.serve(rfile, wfile)
    elapsed = time.perf_counter() - started
    answers = wfile.getvalue().count(b'"result":{"status":200')
    if answers != frames:
        raise SystemExit("expected {} answers, got {}".format(frames, answers))
    return elapsed / frames * 1e6


def over_pipes(runner_dir, script_path, frames, ahead, python):
    """µs per request of `python runner.py` over pipes, `ahead` requests in flight."""
    child = subprocess.Popen(
        [python, os.path.join(runner_dir, "runner.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
    )
    reader = io.BufferedReader(child.stdout, 1 << 16)

    def read_frame():
        message = json.loads(reader.readline())
        payload = reader.read(message.get("payload", 0))
        return message, payload

    def read_answer():
        while True:
            message, _ = read_frame()
            if "method" not in message:
                if "result" not in message:
                    raise SystemExit("request {} failed: {}".format(message.get("id"), message.get("error")))
                return message

    try:
        read_frame()  # hello
        for opening in opening_frames(script_path):
            child.stdin.write(opening)
            read_answer()
        requests = [score_frame(3 + index) for index in range(frames)]
        in_flight = threading.Semaphore(ahead)

        def write_requests():
            for request in requests:
                in_flight.acquire()
                child.stdin.write(request)  # one write per request, as the server does

        started, cpu_started = time.perf_counter(), cpu_seconds(child.pid)
        writer = threading.Thread(target=write_requests, daemon=True)
        writer.start()
        for _ in range(frames):
            read_answer()
            in_flight.release()
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(child.pid) - cpu_started
        writer.join()
        child.stdin.close()
        child.wait(10)
    finally:
        child.kill()
        child.wait()
    return elapsed / frames * 1e6, cpu / frames * 1e6


def cpu_seconds(pid):
    """User + system CPU time of a live process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/{}/stat".format(pid)) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000, help="score requests per run (default 20000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best and the median are shown")
    parser.add_argument("--pipe", action="store_true", help="a runner.py child over real pipes")
    parser.add_argument("--ahead", type=int, default=8, help="--pipe: requests in flight (default 8)")
    parser.add_argument("--python", default=sys.executable, help="--pipe: the child's interpreter")
    parser.add_argument("--prof", action="store_true", help="in-process: print a cProfile table (one run)")
    parser.add_argument("--runner", default=RUNNER_DIR, help="the runner folder to measure (default: this repo's)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="azmlinf-bench-") as folder:
        script_path = os.path.join(folder, "hello.py")
        with open(script_path, "w") as script:
            script.write(HELLO_SCRIPT)
        figures, cpu_figures = [], []
        for _ in range(1 if args.prof else args.repeat):
            if args.pipe:
                wall, cpu = over_pipes(args.runner, script_path, args.frames, args.ahead, args.python)
                figures.append(wall)
                cpu_figures.append(cpu)
            else:
                figures.append(in_process(args.runner, script_path, args.frames, args.prof))
    mode = "pipes, {} ahead".format(args.ahead) if args.pipe else "in-process"
    cpu_text = ""
    if cpu_figures:
        # On a small machine the wall time includes this script's own share of the CPUs.
        cpu_text = "; runner CPU (user + system): best {:.1f} us/request, median {:.1f}".format(
            min(cpu_figures), statistics.median(cpu_figures))
    print("runner hot path ({}, {} requests x {}): best {:.1f} us/request, median {:.1f}{}".format(
        mode, args.frames, len(figures), min(figures), statistics.median(figures), cpu_text))


if __name__ == "__main__":
    main()
