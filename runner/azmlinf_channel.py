"""The framed JSON-RPC 2.0 channel to the server (PROTOCOL.md, "Framing").

A frame is one JSON object on one line, optionally followed by `payload` raw bytes.
This module reads and writes frames and nothing else: it knows no method names.
Writes from any thread go through one lock, so a log line sent by a user thread
never lands inside another frame.
"""

import json
import math
import re
import threading

from azmlinf_deadline import uninterruptible

MAX_LINE_BYTES = 1 << 20

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
SERVER_ERROR = -32000

_ID_IN_GARBAGE = re.compile(rb'"id"\s*:\s*(-?\d+)')


class ChannelClosed(Exception):
    """The server closed its end: nothing more can be read or written."""


class BadFrame(Exception):
    """A line that is not a usable frame; `request_id` is set when one could be found."""

    def __init__(self, message, code, request_id=None):
        super().__init__(message)
        self.code = code
        self.request_id = request_id


class Frame:
    """One decoded frame: the JSON message and the payload bytes that followed it."""

    __slots__ = ("message", "payload")

    def __init__(self, message, payload=b""):
        self.message = message
        self.payload = payload

    @property
    def method(self):
        return self.message.get("method")

    @property
    def request_id(self):
        return self.message.get("id")

    @property
    def params(self):
        params = self.message.get("params")
        return params if isinstance(params, dict) else {}


class Channel:
    """Reads frames from `rfile` and writes frames to `wfile` (both binary streams)."""

    def __init__(self, rfile, wfile):
        self._rfile = rfile
        self._wfile = wfile
        self._write_lock = threading.Lock()

    # -- reading -------------------------------------------------------------------

    def read_frame(self):
        """The next frame; None at end of input. Raises BadFrame for garbage (consumed)."""
        while True:
            line = self._rfile.readline(MAX_LINE_BYTES + 1)
            if not line:
                return None
            if line.strip():
                break
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            self._skip_rest_of_line()
            raise BadFrame("frame line longer than {} bytes".format(MAX_LINE_BYTES), PARSE_ERROR)
        try:
            message = json.loads(line)
        except ValueError as error:
            raise BadFrame("Parse error: {}".format(error), PARSE_ERROR, _guess_request_id(line))
        if not isinstance(message, dict):
            raise BadFrame("Invalid Request: a frame must be a JSON object", INVALID_REQUEST)
        payload_size = message.get("payload") or 0
        if not isinstance(payload_size, int) or isinstance(payload_size, bool) or payload_size < 0:
            raise BadFrame("Invalid Request: bad payload size", INVALID_REQUEST, message.get("id"))
        payload = self._read_exactly(payload_size)
        if payload is None:
            return None
        return Frame(message, payload)

    def _read_exactly(self, size):
        """`size` bytes, or None when the input ends first."""
        chunks = []
        remaining = size
        while remaining:
            chunk = self._rfile.read(remaining)
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _skip_rest_of_line(self):
        while True:
            piece = self._rfile.readline(MAX_LINE_BYTES)
            if not piece or piece.endswith(b"\n"):
                return

    # -- writing -------------------------------------------------------------------

    def send(self, message, payload=b""):
        """Write one frame. Raises ChannelClosed when the server has gone away."""
        if payload:
            message = dict(message, payload=len(payload))
        line = encode_frame_line(message)
        try:
            with uninterruptible(), self._write_lock:
                self._wfile.write(line)
                if payload:
                    self._wfile.write(payload)
                self._wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError) as error:
            # ValueError: the stream was closed under us (I/O operation on closed file).
            raise ChannelClosed(str(error))

    def notify(self, method, params, payload=b""):
        self.send({"jsonrpc": "2.0", "method": method, "params": params}, payload)

    def respond(self, request_id, result, payload=b""):
        self.send({"jsonrpc": "2.0", "id": request_id, "result": result}, payload)

    def respond_error(self, request_id, code, message, data=None):
        error = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.send({"jsonrpc": "2.0", "id": request_id, "error": error})


def encode_frame_line(message):
    """The frame's JSON line: strict JSON (no NaN), UTF-8, one line, `\\n`-terminated.

    The server parses frames with a strict JSON parser, so values Python's json would
    write as `NaN` or fail on (a schema example of an odd type) are made plain first.
    """
    try:
        text = _dumps(message)
    except (TypeError, ValueError):
        text = _dumps(_plain_json(message))
    # A lone surrogate cannot be encoded: "replace" keeps the line valid UTF-8 JSON.
    return text.encode("utf-8", "replace") + b"\n"


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _plain_json(value):
    """`value` with non-finite floats as null and unknown objects as their str()."""
    if isinstance(value, dict):
        return {str(key): _plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _guess_request_id(line):
    """The id of a frame whose JSON is broken, when it can still be seen."""
    match = _ID_IN_GARBAGE.search(line)
    return int(match.group(1)) if match else None
