"""Helpers shared by the runner's tests: scripts in a temp folder, frames in and out."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if RUNNER_DIR not in sys.path:
    sys.path.insert(0, RUNNER_DIR)

from _azmlinfsrv_runner import serve as runner  # noqa: E402

from _azmlinfsrv_runner import http as runner_http  # noqa: E402

# The runner's tests run where Flask and inference-schema are installed (the venv that
# tests/integration/runner_unit_tests.rs makes), and skip nothing: the paths for an
# environment without Flask are tested by hiding it (without_flask(), FLASK_HIDING_PATH).

# A folder whose `flask` and `werkzeug` packages fail to import: put first on
# PYTHONPATH, a runner process behaves as in an environment without Flask.
FLASK_HIDING_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "without_flask")


@contextlib.contextmanager
def without_flask():
    """In this process: `import flask` (and werkzeug) fails, and the runner chooses again."""
    hidden = {name: None for name in ("flask", "werkzeug", "werkzeug.wrappers")}
    saved_modules = {name: sys.modules[name] for name in hidden if name in sys.modules}
    saved_choices = dict(runner_http._chosen_classes)
    sys.modules.update(hidden)
    runner_http._chosen_classes.clear()
    try:
        yield
    finally:
        for name in hidden:
            sys.modules.pop(name, None)
        sys.modules.update(saved_modules)
        runner_http._chosen_classes.clear()
        runner_http._chosen_classes.update(saved_choices)


class ScriptFolder:
    """A temporary app root holding scoring scripts written by a test."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="azmlinf-test-")

    def write(self, name, text):
        path = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as script:
            script.write(textwrap.dedent(text).lstrip("\n"))
        return path

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def request_frame(request_id, method, params=None, payload=b""):
    message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
    if payload:
        message["payload"] = len(payload)
    return json.dumps(message).encode("utf-8") + b"\n" + payload


def notification_frame(method, params=None):
    message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode("utf-8") + b"\n"


def load_frame(script_path, request_id=1, app_root=None, timeout_ms=3600000, **extra):
    params = {
        "entry_script": script_path,
        "app_root": app_root or os.path.dirname(script_path),
        "source_dir": None,
        "model_dir": None,
        "log_level": "INFO",
        "scoring_timeout_ms": timeout_ms,
    }
    params.update(extra)
    return request_frame(request_id, "load", params)


def score_frame(request_id, method="POST", body=b"", query="", headers=(), path="/score"):
    params = {
        "method": method,
        "path": path,
        "query": query,
        "headers": [list(header) for header in headers],
        "request_id": "test-{}".format(request_id),
    }
    return request_frame(request_id, "score", params, body)


def parse_output(data):
    """[(message, payload)] of everything the runner wrote."""
    frames, stream = [], io.BytesIO(data)
    for line in iter(stream.readline, b""):
        message = json.loads(line)
        frames.append((message, stream.read(message.get("payload", 0))))
    return frames


def serve_frames(*frames):
    """Run runner.serve() in this process on the given frames; the frames it wrote."""
    output = io.BytesIO()
    runner.serve(io.BytesIO(b"".join(frames)), output)
    return parse_output(output.getvalue())


class Conversation:
    """What the runner said, with lookups by request id and by kind."""

    def __init__(self, frames):
        self.frames = frames

    @classmethod
    def serve(cls, *frames):
        return cls(serve_frames(*frames))

    def answer(self, request_id):
        """(message, payload) of the response to `request_id`."""
        for message, payload in self.frames:
            if message.get("id") == request_id and "method" not in message:
                return message, payload
        raise AssertionError("no answer to request {} in {!r}".format(request_id, self.frames))

    def result(self, request_id):
        message, payload = self.answer(request_id)
        if "result" not in message:
            raise AssertionError("request {} failed: {!r}".format(request_id, message.get("error")))
        return message["result"], payload

    def error(self, request_id):
        message, _ = self.answer(request_id)
        if "error" not in message:
            raise AssertionError("request {} succeeded: {!r}".format(request_id, message.get("result")))
        return message["error"]

    def logs(self, logger=None):
        return [
            message["params"] for message, _ in self.frames
            if message.get("method") == "log" and (logger is None or message["params"]["logger"] == logger)
        ]

    def log_messages(self, logger=None):
        return [record["message"] for record in self.logs(logger)]

    def notifications(self, method):
        return [(message["params"], payload) for message, payload in self.frames if message.get("method") == method]


def run_runner_process(data, cwd, python=sys.executable, timeout=30, env=None, args=()):
    """`python runner.py [args]` with `data` on stdin: (returncode, frames, stderr text)."""
    completed = subprocess.run(
        [python, os.path.join(RUNNER_DIR, "runner.py")] + list(args),
        input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, timeout=timeout, env=env,
    )
    return completed.returncode, parse_output(completed.stdout), completed.stderr.decode("utf-8", "replace")
