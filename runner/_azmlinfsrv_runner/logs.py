"""Everything the scoring script says, sent to the server as `log` notifications.

Three sources end up here:

- the runner's own messages (`Found user script at ...`), sent directly so that no
  logging configuration of the user's can lose them;
- Python `logging` records, through a handler on the root logger;
- `print()` and other writes to `sys.stdout`, which is replaced by a writer that
  sends each print (or each complete line written directly) under the logger
  `azmlinfsrv.print` at level INFO, like the reference server's print hook.
"""

import builtins
import contextlib
import io
import json
import logging
import logging.config
import os
import sys
import threading
import time

from .channel import ChannelClosed
from .forking import in_forked_child

PRINT_LOGGER = "azmlinfsrv.print"
SERVER_LOGGER = "azmlinfsrv"
SCRIPT_LOGGER = "azmlinfsrv.user_script"

_builtin_print = builtins.print


class LogSender:
    """Sends `log` notifications; never raises into the code that logs."""

    def __init__(self, channel):
        self._channel = channel
        # The id of the request being scored, set by the runner around each `score`:
        # records made meanwhile (by any thread) carry it.
        self.request_id = None

    def send(self, level, logger, message, created=None):
        params = {
            "level": level,
            "logger": logger,
            "message": message,
            "time": time.time() if created is None else created,
        }
        if in_forked_child():
            # A process the script forked has no channel: stderr, which the server
            # passes through, is its only way to the log.
            _write_to_stderr("{} {}: {}\n".format(level, logger, message))
            return
        request_id = self.request_id
        if request_id is not None:
            params["request_id"] = request_id
        try:
            self._channel.notify("log", params)
        except ChannelClosed:
            pass  # the server is gone; the serve loop notices on its next read

    def info(self, logger, message):
        self.send("INFO", logger, message)

    def warning(self, logger, message):
        self.send("WARNING", logger, message)

    def error(self, logger, message):
        self.send("ERROR", logger, message)


def _write_to_stderr(text):
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class ChannelLogHandler(logging.Handler):
    """Root logging handler: one `log` notification per record."""

    def __init__(self, sender):
        super().__init__()
        self._sender = sender
        # The server adds time, level, pid and logger name itself.
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record):
        try:
            message = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._sender.send(record.levelname, record.name, message, record.created)


class PrintedLineWriter(io.TextIOBase):
    """The runner's `sys.stdout`: text written to it becomes `azmlinfsrv.print` logs.

    Complete lines are sent as they are written; a trailing partial line waits for its
    newline, or for `send_partial_line()` (called after each init() and run()).
    """

    def __init__(self, sender):
        super().__init__()
        self._sender = sender
        self._pending = ""
        self._lock = threading.RLock()
        self._binary = _BinaryLineAdapter(self)

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not {}".format(type(text).__name__))
        with self._lock:
            self._pending += text
            while "\n" in self._pending:
                line, _, self._pending = self._pending.partition("\n")
                self._sender.info(PRINT_LOGGER, line)
        return len(text)

    def send_record(self, message):
        """Send one print() call as one record, after any partial line written before it."""
        with self._lock:
            self.send_partial_line()
            self._sender.info(PRINT_LOGGER, message)

    def send_partial_line(self):
        with self._lock:
            if self._pending:
                line, self._pending = self._pending, ""
                self._sender.info(PRINT_LOGGER, line)

    # The rest of the text-stream API that libraries probe for.

    @property
    def buffer(self):
        return self._binary

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    @property
    def line_buffering(self):
        return True

    def fileno(self):
        # fd 1 points at stderr, which the server logs: a child process given
        # sys.stdout writes there.
        return 1

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def flush(self):
        pass


class _BinaryLineAdapter(io.RawIOBase):
    """`sys.stdout.buffer`: bytes are decoded as UTF-8 and written as text."""

    def __init__(self, text_writer):
        super().__init__()
        self._text_writer = text_writer

    def writable(self):
        return True

    def write(self, data):
        self._text_writer.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def fileno(self):
        return 1


def print_as_log(*objects, sep=" ", end="\n", file=None, flush=False):
    """builtins.print: a print to our stdout becomes one log record, as in the reference.

    Prints to any other file (stderr, a redirect_stdout buffer, an open file) behave
    exactly like the built-in print.
    """
    target = file if file is not None else sys.stdout
    if not isinstance(target, PrintedLineWriter):
        return _builtin_print(*objects, sep=sep, end=end, file=file, flush=flush)
    separator = " " if sep is None else sep
    target.send_record(separator.join(str(item) for item in objects))
    return None


@contextlib.contextmanager
def forwarded_output(sender):
    """While active, print()/sys.stdout and root logging records go to the server.

    Yields the stdout writer. Everything is put back on exit, so tests can serve
    in-process.
    """
    saved_stdout, saved_print = sys.stdout, builtins.print
    root = logging.getLogger()
    saved_level = root.level
    handler = ChannelLogHandler(sender)
    writer = PrintedLineWriter(sender)
    sys.stdout, builtins.print = writer, print_as_log
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield writer
    finally:
        writer.send_partial_line()
        sys.stdout, builtins.print = saved_stdout, saved_print
        root.removeHandler(handler)
        root.setLevel(saved_level)


def set_root_level(level_name):
    """Apply AZUREML_LOG_LEVEL to the root logger; returns the level set."""
    level = _parse_level(level_name)
    logging.getLogger().setLevel(level)
    return level


def _parse_level(level_name):
    """AZUREML_LOG_LEVEL as a logging level: a name (any case) or a number; else INFO."""
    text = str(level_name or "INFO").strip()
    if text.lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    return level if isinstance(level, int) else logging.INFO


def apply_logging_json(folders, sender):
    """Apply the first `logging.json` found in `folders` with dictConfig, as the reference does.

    Returns the path applied, or None. Errors propagate: a broken logging.json is a
    start-up failure in the reference too.
    """
    for folder in folders:
        if not folder or not os.path.isdir(folder):
            continue
        path = os.path.join(folder, "logging.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as config_file:
                logging.config.dictConfig(json.load(config_file))
            sender.info(SERVER_LOGGER, "Loaded logging config from {}".format(path))
            return path
    return None
