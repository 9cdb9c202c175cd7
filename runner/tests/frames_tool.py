"""Recorded frames (runner/frames/*.jsonl): the scenarios, recording and replaying them.

    python3 runner/tests/frames_tool.py          # re-record every file in runner/frames/
    python3 runner/tests/frames_tool.py echo     # re-record one

Each scenario is a list of frames sent to the runner; recording serves them through
runner.serve() in this process and writes every frame on the wire, both directions,
in the order they happened (PROTOCOL.md, "Recorded frames"). Values that differ
between runs are written as fixed values, and the frames folder as `{FRAMES}`.
"""

import base64
import io
import json
import os
import subprocess
import sys
import sysconfig

RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES_DIR = os.path.join(RUNNER_DIR, "frames")
FRAMES_PLACEHOLDER = "{FRAMES}"

if RUNNER_DIR not in sys.path:
    sys.path.insert(0, RUNNER_DIR)

from _azmlinfsrv_runner import serve as runner  # noqa: E402  (needs RUNNER_DIR on sys.path)

# What varies between runs, and the value recorded instead.
FIXED_HELLO = {"pid": 4242, "python_version": "3.11.7", "python_executable": "/usr/bin/python3"}
FIXED_TIME = 1732500000.0
FIXED_RUN_MS = 0.5
# An error location in the standard library (not in runner/frames/) is recorded under
# this folder; its line is not compared (it varies with the Python version).
FIXED_STDLIB = "/usr/lib/python3.11"


def _request(request_id, method, params, payload=b""):
    frame = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return _to_runner(frame, payload)


def _to_runner(frame, payload=b""):
    record = {"direction": "to_runner", "frame": dict(frame, payload=len(payload)) if payload else frame}
    if payload:
        record["payload_b64"] = base64.b64encode(payload).decode("ascii")
    return record


def _load(script, timeout_ms=3600000, request_id=1):
    return _request(request_id, "load", {
        "entry_script": FRAMES_PLACEHOLDER + "/scripts/" + script,
        "app_root": FRAMES_PLACEHOLDER + "/scripts",
        "source_dir": None,
        "model_dir": None,
        "log_level": "INFO",
        "scoring_timeout_ms": timeout_ms,
    })


def _score(request_id, method="POST", body=b"", query="", headers=()):
    return _request(request_id, "score", {
        "method": method,
        "path": "/score",
        "query": query,
        "headers": [list(header) for header in headers],
        "request_id": "00000000-0000-4000-8000-{:012d}".format(request_id),
    }, body)


_INIT = _request(2, "init", {})
_SHUTDOWN = _to_runner({"jsonrpc": "2.0", "method": "shutdown"})
_JSON = ("Content-Type", "application/json")

SCENARIOS = {
    # The runner's first frame, then a shutdown.
    "hello": [_SHUTDOWN],
    # load + init of an undecorated script, with the log lines they produce.
    "load_init": [_load("echo.py"), _INIT, _SHUTDOWN],
    # score round trips: a POST body as payload, a GET query, request headers.
    "score": [
        _load("echo.py"), _INIT,
        _score(3, body=b'{"a": [1, 2]}', headers=[_JSON, ("X-Custom", "1")]),
        _score(4, method="GET", query="a=1&b=%5B1,2%5D&c=x&c=y&s=hello+world"),
        _SHUTDOWN,
    ],
    # The headers as the server sends them (werkzeug's spelling, repeats joined, names
    # with "_" dropped): request_headers shows them as they came.
    "request_headers": [
        _load("headers.py"), _INIT,
        _score(3, body=b"x", headers=[("Content-Type", "text/plain"), ("X-Dup", "a,b"), ("Host", "localhost:5001"),
                                      ("X-H2O-Id", "h")]),
        _SHUTDOWN,
    ],
    # Every score error kind an undecorated script can produce, and a failed-run response.
    "score_errors": [
        _load("errors.py", timeout_ms=300), _INIT,
        _score(3, body=b"\xff\xfeabc"),
        _score(4, body=b'{"mode": "raise"}'),
        _score(5, body=b'{"mode": "set"}'),
        _score(6, body=b'{"mode": "sleep"}'),
        _score(7, body=b'{"mode": "exit"}'),
        _score(8, body=b'{"mode": "aml500"}'),
        _score(9, body=b'{"mode": "none"}'),
        _SHUTDOWN,
    ],
    # Start-up failures: each load fails until one succeeds, whose init() then fails.
    "load_errors": [
        _load("does_not_exist.py", request_id=1),
        _load("import_error.py", request_id=2),
        _load("no_run.py", request_id=3),
        _load("bad_signature.py", request_id=4),
        _load("init_raises.py", request_id=5),
        _request(6, "init", {}),
        _SHUTDOWN,
    ],
    # print() and logging records as `log` notifications.
    "logs": [_load("logs.py"), _INIT, _SHUTDOWN],
    # Streamed bodies: chunk notifications, then end (with the error of a failing body).
    "streaming": [
        _load("streaming.py"), _INIT,
        _score(3, body=b"ok"),
        _score(4, body=b"broken"),
        _SHUTDOWN,
    ],
    # @rawhttp: the request object, with or without Flask installed; OPTIONS reaches run() too.
    "rawhttp": [
        _load("rawhttp.py"), _INIT,
        _score(3, query="mode=info&x=1&x=2", body=b'{"k": [1, 2]}', headers=[_JSON, ("X-Custom", "cval")]),
        _score(4, method="GET", query="a=%FF&b=1;c=2"),
        _score(5, body=b"a=1&b=two", headers=[("Content-Type", "application/x-www-form-urlencoded")]),
        _score(6, method="OPTIONS"),
        _SHUTDOWN,
    ],
    # Frames the runner cannot use: answered when they carry an id, else ignored.
    "bad_frames": [
        {"direction": "to_runner", "line": 'this is not JSON, "id": 7'},
        {"direction": "to_runner", "line": "[1, 2, 3]"},
        _request(8, "no_such_method", {}),
        _to_runner({"jsonrpc": "2.0", "method": "no_such_notification", "params": {}}),
        _score(9, body=b"before any load"),
        _SHUTDOWN,
    ],
    # @input_schema (needs inference-schema): the 415 and 400 answers, and success.
    "schema": [
        _load("schema.py"), _INIT,
        _score(3, body=b'{"data": {"a": 1}}', headers=[("Content-Type", "text/plain")]),
        _score(4, body=b'{"factor": 3}', headers=[_JSON]),
        _score(5, body=b'{"data": ', headers=[_JSON]),
        _score(6, body=b'{"data": {"a": 4}, "factor": 3}', headers=[_JSON]),
        _score(7, method="GET", query="data=%7B%22a%22%3A5%7D"),
        _SHUTDOWN,
    ],
}

# Scenarios whose script needs a package the runner itself does not. They run in a
# runner process of their own: inference-schema keeps a process-wide registry keyed by
# "entry_module.run", which would leak into the next script loaded in this process.
SCENARIO_NEEDS = {"schema": "inference_schema"}


# -- running frames through the runner ------------------------------------------------


def substitute(value, old, new):
    """`value` with `old` replaced by `new` in every string inside it."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [substitute(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, old, new) for key, item in value.items()}
    return value


def wire_bytes(record):
    """The bytes a to_runner record puts on the wire."""
    if "line" in record:
        return record["line"].encode("utf-8") + b"\n"
    frame = substitute(record["frame"], FRAMES_PLACEHOLDER, FRAMES_DIR)
    payload = base64.b64decode(record.get("payload_b64", ""))
    return json.dumps(frame, separators=(",", ":")).encode("utf-8") + b"\n" + payload


class _ScriptedInput(io.BytesIO):
    """The runner's input; notes how much output existed when each frame was read."""

    def __init__(self, frames, output):
        self._starts = []
        data = b""
        for frame in frames:
            self._starts.append(len(data))
            data += frame
        super().__init__(data)
        self._output = output
        self.output_before_frame = {}

    def read1(self, size=-1):
        # One frame per read, as when the server sends them one at a time; the runner
        # has written everything it had to say before it reads again.
        position = self.tell()
        if position in self._starts:
            self.output_before_frame[self._starts.index(position)] = len(self._output.getvalue())
        later = [start for start in self._starts if start > position]
        limit = later[0] - position if later else -1
        if size is not None and size >= 0 and (limit < 0 or size < limit):
            limit = size
        return super().read(limit)


def parse_frames(data):
    """[(message, payload bytes)] of the runner's output."""
    frames, stream = [], io.BytesIO(data)
    for line in iter(stream.readline, b""):
        message = json.loads(line)
        frames.append((message, stream.read(message.get("payload", 0))))
    return frames


def from_runner_record(message, payload):
    message = substitute(_with_fixed_values(message), FRAMES_DIR, FRAMES_PLACEHOLDER)
    record = {"direction": "from_runner", "frame": message}
    if payload:
        record["payload_b64"] = base64.b64encode(payload).decode("ascii")
    return record


def _with_fixed_values(message):
    message = json.loads(json.dumps(message))
    params, result = message.get("params"), message.get("result")
    if message.get("method") == "hello":
        params.update(FIXED_HELLO)
    if message.get("method") == "log":
        params["time"] = FIXED_TIME
    if isinstance(result, dict) and result.get("run_ms") is not None:
        result["run_ms"] = FIXED_RUN_MS
    # Tracebacks and locations in the standard library name this machine's folder.
    return substitute(message, os.path.join(sysconfig.get_paths()["stdlib"], ""), FIXED_STDLIB + "/")


def replay(to_runner_records):
    """Serve the records through runner.serve(); all records, both directions, in order."""
    output = io.BytesIO()
    scripted = _ScriptedInput([wire_bytes(record) for record in to_runner_records], output)
    runner.serve(scripted, output)
    data = output.getvalue()
    boundaries = sorted(scripted.output_before_frame.items())
    records, consumed = [], 0
    for index, offset in boundaries + [(len(to_runner_records), len(data))]:
        records.extend(from_runner_record(m, p) for m, p in parse_frames(data[consumed:offset]))
        consumed = offset
        if index < len(to_runner_records):
            records.append(to_runner_records[index])
    return records


def replay_in_subprocess(to_runner_records, python=sys.executable, timeout=60):
    """Like replay(), through `python runner.py` with real pipes: one frame at a time."""
    process = subprocess.Popen(
        [python, os.path.join(RUNNER_DIR, "runner.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=FRAMES_DIR,
    )
    try:
        records = [from_runner_record(*_read_frame(process.stdout))]  # hello
        for record in to_runner_records:
            records.append(record)
            process.stdin.write(wire_bytes(record))
            process.stdin.flush()
            request_id = record.get("frame", {}).get("id")
            while request_id is not None:
                message, payload = _read_frame(process.stdout)
                records.append(from_runner_record(message, payload))
                if message.get("id") == request_id and "method" not in message:
                    break
        process.stdin.close()
        process.wait(timeout)
    finally:
        process.kill()
        process.stdout.close()
    return records


def _read_frame(stream):
    message = json.loads(stream.readline())
    return message, stream.read(message.get("payload", 0))


def replay_scenario_records(name, to_runner_records):
    """replay(), or replay_in_subprocess() for a scenario that needs its own process."""
    if name in SCENARIO_NEEDS:
        return replay_in_subprocess(to_runner_records)
    return replay(to_runner_records)


def comparable(records):
    """(frame, payload) of each from_runner record, with traceback details reduced."""
    return [
        (_reduce_stdlib_lines(_reduce_tracebacks(record["frame"])), record.get("payload_b64"))
        for record in records
        if record["direction"] == "from_runner"
    ]


def _reduce_tracebacks(value):
    """A traceback varies with the Python version: keep its text before and its last line."""
    if isinstance(value, str) and ("Traceback (most recent call last)" in value or 'File "' in value):
        before = value.split("Traceback (most recent call last)")[0]
        lines = [line for line in value.strip().splitlines() if line.strip()]
        return before + " ... " + lines[-1]
    if isinstance(value, list):
        return [_reduce_tracebacks(item) for item in value]
    if isinstance(value, dict):
        return {key: _reduce_tracebacks(item) for key, item in value.items()}
    return value


def _reduce_stdlib_lines(frame):
    location = ((frame.get("error") or {}).get("data") or {}).get("location")
    if location and location["file"].startswith(FIXED_STDLIB + "/"):
        location["line"] = None
    return frame


# -- files ----------------------------------------------------------------------------


def frames_path(name):
    return os.path.join(FRAMES_DIR, name + ".jsonl")


def read_records(name):
    with open(frames_path(name), encoding="utf-8") as records_file:
        return [json.loads(line) for line in records_file if line.strip()]


def write_records(name, records):
    with open(frames_path(name), "w", encoding="utf-8", newline="\n") as records_file:
        for record in records:
            records_file.write(json.dumps(record, ensure_ascii=False, separators=(", ", ": ")) + "\n")


def record_scenario(name):
    write_records(name, replay_scenario_records(name, SCENARIOS[name]))


def main(names):
    for name in names or sorted(SCENARIOS):
        record_scenario(name)
        print("recorded", frames_path(name), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
