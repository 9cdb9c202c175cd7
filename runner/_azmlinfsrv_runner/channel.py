"""The framed JSON-RPC 2.0 channel to the server (PROTOCOL.md, "Framing").

A frame is one JSON object on one line, optionally followed by `payload` raw bytes.
This module reads and writes frames and nothing else: it knows no method names.

Every request pays for what happens here, so both directions avoid syscalls:

- Reading goes through our own buffer, filled by one `read1()` (one syscall) at a
  time, so we always know whether the next frame is already here. The server may
  send several requests before reading the answers (pipelining): one read can bring
  several frames, and a frame's payload may straddle reads.
- Writing appends to a pending output buffer. A frame sent with `flush=False` (the
  runner does so for quick `score` answers) waits there while the next request is
  already buffered, until the reader is about to block for more input or anything
  else is flushed, so that the answers to pipelined requests leave in one write.
  Nothing ever waits for more input: the pending output is written before every read.

Writes from any thread go through one lock, so a log line sent by a user thread
never lands inside another frame; other threads always flush (their logs go out at
once, with whatever the main thread had pending before them).
"""

import json
import math
import re
import threading

from .deadline import enter_shield, leave_shield, shield_needed, stop_timer

MAX_LINE_BYTES = 1 << 20

# What one read asks for: a pipe holds 64 KiB by default.
READ_SIZE = 1 << 16

# A payload this big is written on its own rather than copied into the pending output.
DIRECT_WRITE_BYTES = 1 << 16

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
SERVER_ERROR = -32000

_ID_IN_GARBAGE = re.compile(rb'"id"\s*:\s*(-?\d+)')

# The scanner under json.loads(): (value, end) of the JSON text at an index. Calling it
# on the decoded line skips json.loads()'s encoding guess and whitespace regexes; it
# gives the same value for the text json.loads() would take.
_scan_json = json.JSONDecoder().scan_once

# json.dumps(...) with these options builds a new encoder on every call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


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

    __slots__ = ("message", "payload", "method", "request_id")

    def __init__(self, message, payload=b""):
        self.message = message
        self.payload = payload
        self.method = message.get("method")
        self.request_id = message.get("id")

    @property
    def params(self):
        params = self.message.get("params")
        return params if isinstance(params, dict) else {}


class Channel:
    """Reads frames from `rfile` and writes frames to `wfile` (both binary streams).

    `rfile` is best a buffered reader (read1() is then one syscall at most, and read(n)
    fills a large payload without copying it again); any stream with read() works.
    `wfile` is best unbuffered: a write is then one syscall.
    """

    def __init__(self, rfile, wfile):
        self._rfile = rfile
        self._read_some = getattr(rfile, "read1", None) or rfile.read
        self._buffer = b""  # input read but not consumed yet: self._buffer[self._start:]
        self._start = 0
        self._wfile = wfile
        self._write = wfile.write
        self._flush_stream = getattr(wfile, "flush", None) or (lambda: None)
        self._pending = bytearray()  # output not written yet, in frame order
        self._write_lock = threading.Lock()

    # -- reading -------------------------------------------------------------------

    def read_frame(self):
        """The next frame; None at end of input. Raises BadFrame for garbage (consumed)."""
        # The usual frame, taken apart in place: its line is already buffered, and
        # holds one JSON object from its first byte to its newline, with a payload
        # size that is a plain int. Anything else takes the general path below.
        buffer, start = self._buffer, self._start
        end = buffer.find(b"\n", start)
        if start < end <= start + MAX_LINE_BYTES:
            text = message = None
            try:
                text = buffer[start:end].decode("utf-8")
                message, stop = _scan_json(text, 0)
            except (ValueError, StopIteration):
                pass
            if message.__class__ is dict and stop == len(text):
                size = message.get("payload") or 0
                if size.__class__ is int and size >= 0:
                    start = end + 1
                    end = start + size
                    if end <= len(buffer):
                        self._start = end
                        return Frame(message, buffer[start:end] if size else b"")
                    self._start = start
                    payload = self._read_exactly(size)
                    return None if payload is None else Frame(message, payload)
        return self._read_any_frame()

    def _read_any_frame(self):
        while True:
            line = self._read_line()
            if line is None:
                return None
            if line.strip():
                break
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

    def _read_line(self):
        """The next line, `\\n` included (not at the end of input); None at end of input.

        Raises BadFrame for a line longer than MAX_LINE_BYTES (consumed whole), as
        `readline(MAX_LINE_BYTES + 1)` would find it.
        """
        buffer, start = self._buffer, self._start
        end = buffer.find(b"\n", start)
        if 0 <= end <= start + MAX_LINE_BYTES:
            self._start = end + 1
            return buffer[start:end + 1]
        return self._read_line_slowly(end)

    def _read_line_slowly(self, end):
        searched = len(self._buffer) - self._start  # bytes known to hold no newline
        while end < 0:
            if searched > MAX_LINE_BYTES:
                self._skip_rest_of_line()
                raise BadFrame("frame line longer than {} bytes".format(MAX_LINE_BYTES), PARSE_ERROR)
            if not self._fill():
                # The input ends without a newline: the rest is the last line.
                line = self._buffer[self._start:]
                self._buffer, self._start = b"", 0
                return line or None
            end = self._buffer.find(b"\n", self._start + searched)
            searched = len(self._buffer) - self._start
        start, self._start = self._start, end + 1
        if end - start > MAX_LINE_BYTES:
            raise BadFrame("frame line longer than {} bytes".format(MAX_LINE_BYTES), PARSE_ERROR)
        return self._buffer[start:end + 1]

    def _skip_rest_of_line(self):
        """Drop input up to and including the next newline (or to the end of input)."""
        while True:
            end = self._buffer.find(b"\n", self._start)
            if end >= 0:
                self._start = end + 1
                return
            self._buffer, self._start = b"", 0
            if not self._fill():
                return

    def _fill(self):
        """Read once more onto the buffer; False at the end of input."""
        self._before_waiting()
        chunk = self._read_some(READ_SIZE)
        if not chunk:
            return False
        if self._start >= len(self._buffer):
            self._buffer = chunk
        else:
            self._buffer = self._buffer[self._start:] + chunk
        self._start = 0
        return True

    def _before_waiting(self):
        """What must be done before a read that may block."""
        # An answer must never wait for the server's next request.
        if self._pending:
            self.flush()
        # The last run()'s deadline timer may still run (see disarm()): an idle
        # runner gets no alarm.
        stop_timer()

    def _read_exactly(self, size):
        """`size` bytes, or None when the input ends first."""
        start = self._start
        end = start + size
        if end <= len(self._buffer):
            # The usual case: the payload came with its line.
            self._start = end
            return self._buffer[start:end]
        chunks = [self._buffer[start:]] if start < len(self._buffer) else []
        self._buffer, self._start = b"", 0
        remaining = size - (len(chunks[0]) if chunks else 0)
        self._before_waiting()
        while remaining:
            # read(n), not read1(): a buffered reader reads a large payload straight
            # into the bytes it returns.
            chunk = self._rfile.read(remaining)
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    # -- writing -------------------------------------------------------------------

    def send(self, message, payload=b"", flush=True):
        """Send one frame. Raises ChannelClosed when the server has gone away.

        flush=False leaves it in the pending output (see the module's docstring).
        """
        if payload:
            message = dict(message, payload=len(payload))
        self.send_line(encode_frame_line(message), payload, flush)

    def send_line(self, line, payload=b"", flush=True):
        """Send one frame whose line is already encoded (with its `payload` member)."""
        if not flush and self._buffer.find(b"\n", self._start) < 0:
            # No next request here (flush=False is the reader's thread): holding the
            # frame would only delay it until the read.
            flush = True
        if not shield_needed():
            self._send_line(line, payload, flush)
            return
        # A scoring deadline runs in this thread (a print() in run()): its timeout
        # must not cut the frame in half.
        enter_shield()
        try:
            self._send_line(line, payload, flush)
        except BaseException:
            leave_shield(quietly=True)  # the write's own error wins
            raise
        leave_shield()

    def _send_line(self, line, payload, flush):
        try:
            with self._write_lock:
                pending = self._pending
                pending += line
                if len(payload) >= DIRECT_WRITE_BYTES:
                    self._write_pending()
                    self._write_all(payload)
                    self._flush_stream()
                    return
                pending += payload
                if flush:
                    self._write_pending()
        except (BrokenPipeError, ConnectionResetError, ValueError) as error:
            # ValueError: the stream was closed under us (I/O operation on closed file).
            raise ChannelClosed(str(error))

    def flush(self):
        """Write the pending output now."""
        try:
            with self._write_lock:
                self._write_pending()
        except (BrokenPipeError, ConnectionResetError, ValueError) as error:
            raise ChannelClosed(str(error))

    def _write_pending(self):
        """Write out everything pending; the caller holds the lock."""
        pending = self._pending
        if pending:
            self._pending = bytearray()
            self._write_all(pending)
            self._flush_stream()

    def _write_all(self, data):
        written = self._write(data)
        if written is not None and written < len(data):
            # An unbuffered stream (a pipe) may take less than all; go on until it took all.
            view = memoryview(data)
            while written < len(data):
                written += self._write(view[written:]) or 0

    def notify(self, method, params, payload=b""):
        self.send({"jsonrpc": "2.0", "method": method, "params": params}, payload)

    def respond(self, request_id, result, payload=b"", flush=True):
        self.send({"jsonrpc": "2.0", "id": request_id, "result": result}, payload, flush)

    def respond_error(self, request_id, code, message, data=None, flush=True):
        error = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.send({"jsonrpc": "2.0", "id": request_id, "error": error}, b"", flush)


def encode_frame_line(message):
    """The frame's JSON line: strict JSON (no NaN), UTF-8, one line, `\\n`-terminated.

    The server parses frames with a strict JSON parser, so values Python's json would
    write as `NaN` or fail on (a schema example of an odd type) are made plain first.
    """
    try:
        text = _encode_json(message)
    except (TypeError, ValueError):
        text = _encode_json(_plain_json(message))
    # A lone surrogate cannot be encoded: "replace" keeps the line valid UTF-8 JSON.
    return text.encode("utf-8", "replace") + b"\n"


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
