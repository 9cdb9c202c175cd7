"""The framed JSON-RPC 2.0 channel to the server (PROTOCOL.md, "Framing").

A frame is one JSON object on one line, optionally followed by `payload` raw bytes.
This module reads and writes frames and nothing else: it knows no method names.

Every request pays for what happens here, so both directions avoid syscalls:

- Reading goes through our own buffer, filled by one read (one syscall) at a time,
  so we always know whether the next frame is already here. The server may send
  several requests before reading the answers (pipelining): one read can bring
  several frames, and a frame's payload may straddle reads.
- Writing sends each frame at once, its line and a small payload in one write. An
  answer is never held back: the server relies on every answer being written before
  the runner starts the next request (PROTOCOL.md, "Messages").

While the runner streams an answer, it looks for a `cancel` notification between
chunks without blocking (`cancel_requested`): it takes apart the frames already
buffered, polls the input for more with a zero timeout, and keeps every other frame
(pipelined requests) for `read_frame` in arrival order.

Writes from any thread go through one lock, so a log line sent by a user thread
never lands inside another frame.

In a process forked from the runner (a script's `os.fork()`, multiprocessing), the
channel is dead (see `forking.py`): a read or a write ends that process at once, so
that a child returning into the runner's loop never answers a frame.
"""

import collections
import io
import json
import math
import re
import select
import sys
import threading

from .deadline import enter_shield, leave_shield, shield_needed, stop_timer
from .forking import leave_if_forked_child

MAX_LINE_BYTES = 1 << 20

# What one read asks for: a pipe holds 64 KiB by default.
READ_SIZE = 1 << 16

# A payload this big is written on its own rather than copied after its line.
DIRECT_WRITE_BYTES = 1 << 16

# The notification that asks the runner to stop streaming the answer to request `id`.
CANCEL_METHOD = "cancel"

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

    `rfile` is best unbuffered with a real file descriptor (the runner's pipe): a read
    is then one syscall, and `cancel_requested` can poll the descriptor for input
    without blocking (a buffered reader could hide input in its own buffer from the
    poll). Any stream with read() works; without a descriptor, `cancel_requested` sees
    only what was read already. `wfile` is best unbuffered: a write is then one syscall.
    """

    def __init__(self, rfile, wfile):
        self._rfile = rfile
        self._read_some = getattr(rfile, "read1", None) or rfile.read
        self._readinto = getattr(rfile, "readinto", None)
        self._buffer = b""  # input read but not consumed yet: self._buffer[self._start:]
        self._start = 0
        # Frames (or BadFrame errors) taken apart by cancel_requested() and not handed
        # out yet, in arrival order: read_frame() returns them first.
        self._early = collections.deque()
        # After the frames in _early, a frame whose payload was still arriving:
        # [message, bytearray of the payload's size, bytes received so far].
        self._partial = None
        self._input_ready = _input_poller(rfile)
        self._wfile = wfile
        self._write = wfile.write
        self._flush_stream = getattr(wfile, "flush", None) or (lambda: None)
        self._write_lock = threading.Lock()

    # -- reading -------------------------------------------------------------------

    def read_frame(self):
        """The next frame; None at end of input. Raises BadFrame for garbage (consumed)."""
        if self._early or self._partial is not None:
            return self._next_early_frame()
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
        message, payload_size = _decode_line(line)
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
        return self._append(self._read_some(READ_SIZE))

    def _append(self, chunk):
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
        leave_if_forked_child()
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
        have = max(len(self._buffer) - start, 0)
        self._before_waiting()
        if self._readinto is None:
            chunks = [self._buffer[start:]]
            self._buffer, self._start = b"", 0
            remaining = size - have
            while remaining:
                chunk = self._rfile.read(remaining)
                if not chunk:
                    return None
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks)
        # Straight into one buffer the payload's size: the pipe gives 64 KiB a read,
        # and a 100 MB body must not cost a new allocation (or copy) per read.
        payload = bytearray(size)
        payload[:have] = self._buffer[start:]
        self._buffer, self._start = b"", 0
        return self._finish_payload(payload, have)

    def _finish_payload(self, payload, have):
        """Read the rest of `payload` (blocking); its bytes, or None if the input ends."""
        with memoryview(payload) as view:
            while have < len(payload):
                count = self._readinto(view[have:])
                if not count:
                    return None
                have += count
        return bytes(payload)

    # -- looking ahead while streaming -----------------------------------------------

    def cancel_requested(self, request_id):
        """Whether a `cancel` for `request_id` has arrived, without blocking.

        Takes apart the frames already read, polls the input once with a zero timeout
        for more, and consumes the `cancel` if found; every other frame stays queued
        for read_frame(), in order.
        """
        if self._input_ready():
            try:
                self._read_ahead_once()
            except (OSError, ValueError):
                pass  # the server is gone or the stream closed: the next read_frame says so
        self._take_apart_buffered_frames()
        for index, item in enumerate(self._early):
            if isinstance(item, Frame) and item.method == CANCEL_METHOD and item.request_id is None \
                    and item.params.get("id") == request_id:
                del self._early[index]
                return True
        return False

    def _read_ahead_once(self):
        """One read that does not block (the input is ready), onto what is pending."""
        if self._partial is None:
            self._append(self._read_some(READ_SIZE))
            return
        message, payload, have = self._partial
        with memoryview(payload) as view:
            count = self._readinto(view[have:]) or 0
        if count and have + count == len(payload):
            self._partial = None
            self._early.append(Frame(message, bytes(payload)))
        elif count:
            self._partial[2] = have + count

    def _take_apart_buffered_frames(self):
        """Move each frame whose line and payload are wholly in the buffer to _early.

        A frame whose payload is still arriving becomes _partial: the rest of its
        payload is read straight into its own buffer, so a large body behind the
        stream costs no copying of the buffer on every look-ahead.
        """
        while self._partial is None:
            buffer, start = self._buffer, self._start
            end = buffer.find(b"\n", start)
            if end < 0:
                return  # a partial line: read_frame() finishes it
            line = buffer[start:end + 1]
            if end - start > MAX_LINE_BYTES:
                self._start = end + 1
                self._early.append(BadFrame("frame line longer than {} bytes".format(MAX_LINE_BYTES), PARSE_ERROR))
                continue
            if not line.strip():
                self._start = end + 1
                continue
            try:
                message, size = _decode_line(line)
            except BadFrame as bad_frame:
                self._start = end + 1
                self._early.append(bad_frame)
                continue
            if end + 1 + size > len(buffer):
                if self._readinto is None:
                    return  # read_frame() reads the rest of the payload
                payload = bytearray(size)
                have = len(buffer) - (end + 1)
                payload[:have] = buffer[end + 1:]
                self._buffer, self._start = b"", 0
                self._partial = [message, payload, have]
                return
            self._start = end + 1 + size
            self._early.append(Frame(message, buffer[end + 1:end + 1 + size]))

    def _next_early_frame(self):
        if not self._early:
            message, payload, have = self._partial
            self._partial = None
            self._before_waiting()
            payload = self._finish_payload(payload, have)
            return None if payload is None else Frame(message, payload)
        item = self._early.popleft()
        if isinstance(item, BadFrame):
            raise item
        return item

    # -- writing -------------------------------------------------------------------

    def send(self, message, payload=b""):
        """Send one frame now. Raises ChannelClosed when the server has gone away."""
        if payload:
            message = dict(message, payload=len(payload))
        self.send_line(encode_frame_line(message), payload)

    def send_line(self, line, payload=b""):
        """Send one frame whose line is already encoded (with its `payload` member)."""
        if not shield_needed():
            self._send_line(line, payload)
            return
        # A scoring deadline runs in this thread (a print() in run()): its timeout
        # must not cut the frame in half.
        enter_shield()
        try:
            self._send_line(line, payload)
        except BaseException:
            leave_shield(quietly=True)  # the write's own error wins
            raise
        leave_shield()

    def _send_line(self, line, payload):
        leave_if_forked_child()
        try:
            with self._write_lock:
                if len(payload) >= DIRECT_WRITE_BYTES:
                    self._write_all(line)
                    self._write_all(payload)
                else:
                    # One write (one syscall) for the line and a small payload.
                    self._write_all(line + payload if payload else line)
                self._flush_stream()
        except (BrokenPipeError, ConnectionResetError, ValueError) as error:
            # ValueError: the stream was closed under us (I/O operation on closed file).
            raise ChannelClosed(str(error))

    def _write_all(self, data):
        written = self._write(data)
        if written is not None and written < len(data):
            # An unbuffered stream (a pipe) may take less than all; go on until it took all.
            view = memoryview(data)
            while written < len(data):
                written += self._write(view[written:]) or 0

    def notify(self, method, params, payload=b""):
        self.send({"jsonrpc": "2.0", "method": method, "params": params}, payload)

    def respond(self, request_id, result, payload=b""):
        self.send({"jsonrpc": "2.0", "id": request_id, "result": result}, payload)

    def respond_error(self, request_id, code, message, data=None):
        error = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.send({"jsonrpc": "2.0", "id": request_id, "error": error})


def _decode_line(line):
    """(message, payload size) of a frame's line; raises BadFrame for anything else."""
    try:
        message = json.loads(line)
    except ValueError as error:
        raise BadFrame("Parse error: {}".format(error), PARSE_ERROR, _guess_request_id(line))
    if not isinstance(message, dict):
        raise BadFrame("Invalid Request: a frame must be a JSON object", INVALID_REQUEST)
    payload_size = message.get("payload") or 0
    if not isinstance(payload_size, int) or isinstance(payload_size, bool) or payload_size < 0:
        raise BadFrame("Invalid Request: bad payload size", INVALID_REQUEST, message.get("id"))
    return message, payload_size


def _input_poller(rfile):
    """A function that says, without blocking, whether `rfile` has input to read."""
    try:
        fd = rfile.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return _no_input
    if sys.platform == "win32":
        return _no_input  # select() takes sockets only there: the buffer alone is checked
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)

        def input_ready():
            try:
                return bool(poller.poll(0))
            except (OSError, ValueError):
                return False

        return input_ready

    def input_ready_by_select():
        try:
            return bool(select.select([fd], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    return input_ready_by_select


def _no_input():
    return False


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
