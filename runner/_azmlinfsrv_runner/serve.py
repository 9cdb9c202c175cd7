"""The serving loop: takes over stdio, says hello, and answers load, init and score.

See the package docstring for the other modules and PROTOCOL.md for the protocol.
"""

import atexit
import faulthandler
import os
import platform
import signal
import sys
import threading
import time
import traceback

from . import aml_request
from .channel import METHOD_NOT_FOUND, SERVER_ERROR, BadFrame, Channel, ChannelClosed
from .contrib import install_contrib_modules
from .forking import protect_channel_across_fork
from .deadline import (
    ScoringTimeout,
    arm,
    can_interrupt_run,
    disarm,
    format_milliseconds,
    stop_timer,
    watch_for_debugger,
)
from .debugger import DebuggerWatch, start_debugger
from .errors import Failure, describe, exception_summary, user_traceback
from .http import request_class
from .inputs import InputError, argument_builder
from .logs import (
    SCRIPT_LOGGER,
    SERVER_LOGGER,
    LogSender,
    apply_logging_json,
    forwarded_output,
    set_root_level,
)
from .outputs import NotSerializable, encode_result, is_response_object, json_response
from .script import RAWHTTP, extend_sys_path, load_user_script

# Bumped on every incompatible change; `PROTOCOL_VERSION` in the server's wire types
# carries the same number.
PROTOCOL_VERSION = 2

# How long user atexit handlers may take once the server has gone.
EXIT_HANDLERS_GRACE_SECONDS = 2.0

# The `end` error of a streamed answer the server cancelled (its client went away or
# stopped reading).
CANCELLED_STREAM_ERROR = "cancelled: the client stopped reading the answer"

# The `score` result line of the usual answer (run() returned something json.dumps
# took), written by hand: encoding this dict with json costs more than the rest of
# the runner's work for a small request. What encode_frame_line() would write, but
# for run_ms: to the nanosecond rather than float's shortest repr(), which costs more
# than all the rest of the line (the server shows 3 decimals).
_JSON_RESULT_LINE = (
    b'{"jsonrpc":"2.0","id":%d,"result":{"status":200,"headers":[["Content-Type","application/json"]],'
    b'"run_ms":%.6f,"run_failed":false,"streaming":false},"payload":%d}\n'
)
_JSON_HEADERS = [["Content-Type", "application/json"]]


class Runner:
    """Answers the server's requests for one scoring script."""

    def __init__(self, channel, log, stdout_writer):
        self.channel = channel
        self.log = log
        self.stdout_writer = stdout_writer
        self.script = None
        self.scoring_timeout_ms = None  # from `load`: the server decides it
        self._deadline_ms = None  # the timeout the SIGALRM deadline enforces; None: none
        self._build_arguments = None  # (params, payload) -> run()'s arguments, per script
        self._handlers = {"load": self.load, "init": self.init, "score": self.score}
        self.debugger = DebuggerWatch(channel)
        watch_for_debugger(self.debugger.attached_during_run)

    def serve_forever(self):
        """Say hello, then answer frames until the input ends or `shutdown` arrives."""
        self.channel.notify("hello", {
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "python_version": platform.python_version(),
            "python_executable": sys.executable,
        })
        read_frame = self.channel.read_frame
        while True:
            try:
                frame = read_frame()
            except BadFrame as bad_frame:
                self._answer_bad_frame(bad_frame)
                continue
            if frame is None or frame.method == "shutdown":
                if frame is not None and frame.request_id is not None:
                    self.channel.respond(frame.request_id, {})
                return
            self._dispatch(frame)

    def _dispatch(self, frame):
        if frame.request_id is None:
            return  # a notification we don't know (or a request without id): nothing to answer
        handler = self._handlers.get(frame.method)
        if handler is None:
            self.channel.respond_error(frame.request_id, METHOD_NOT_FOUND, "Method not found: {}".format(frame.method))
            return
        try:
            handler(frame)
        except ChannelClosed:
            raise
        except Failure as failure:
            self.channel.respond_error(frame.request_id, SERVER_ERROR, failure.message, failure.error_data())
        except BaseException as error:
            # A bug of ours, or a BaseException from user code outside run(): the
            # request fails, the runner goes on.
            self._log_exception("Encountered Exception: ", error)
            failure = Failure("internal", "the runner failed to answer `{}`: {}".format(frame.method, describe(error)),
                              error)
            self.channel.respond_error(frame.request_id, SERVER_ERROR, failure.message, failure.error_data())

    def _answer_bad_frame(self, bad_frame):
        self.log.warning(SERVER_LOGGER, "The runner ignored a frame it cannot use: {}".format(bad_frame))
        if bad_frame.request_id is not None:
            self.channel.respond_error(bad_frame.request_id, bad_frame.code, str(bad_frame))

    def _log_exception(self, prefix, error):
        self.log.error(SERVER_LOGGER, prefix + user_traceback(error))

    def _loaded_script(self):
        if self.script is None:
            raise Failure("internal", "No scoring script is loaded: `load` must succeed first.")
        return self.script

    # -- load ----------------------------------------------------------------------

    def load(self, frame):
        """Import the script and analyse run(); answer its input mode and schemas."""
        if self.script is not None:
            raise Failure("internal", "The scoring script is already loaded.")
        params = frame.params
        timeout = params.get("scoring_timeout_ms")
        if timeout.__class__ not in (int, float):
            # The server always sends it: the runner keeps no default of its own.
            raise Failure("internal", "`load` needs scoring_timeout_ms as a number of milliseconds, got {!r}"
                          .format(timeout))
        self.scoring_timeout_ms = timeout
        # Decided once: whether run() gets a SIGALRM deadline (0 or less: no timeout;
        # only the main thread of a POSIX system can be interrupted).
        enforced = self.scoring_timeout_ms and self.scoring_timeout_ms > 0 and can_interrupt_run()
        self._deadline_ms = self.scoring_timeout_ms if enforced else None
        self.script = prepare_and_load_script(params, self.log, self.debugger)
        self._build_arguments = argument_builder(self.script)
        self.channel.respond(frame.request_id, {"input_mode": self.script.input_mode, "schemas": self.script.schemas})

    # -- init ----------------------------------------------------------------------

    def init(self, frame):
        """Run the script's init() once."""
        script = self._loaded_script()
        stop_timer()
        self.debugger.check()
        self.log.info(SCRIPT_LOGGER, "Invoking user's init function")
        try:
            script.init()
        except BaseException as error:
            raise Failure("init_failed", "User's init function failed: {}".format(exception_summary(error)), error)
        finally:
            self.stdout_writer.send_partial_line()
        self.log.info(SCRIPT_LOGGER, "Users's init has completed successfully")
        self.channel.respond(frame.request_id, {})

    # -- score ---------------------------------------------------------------------

    def score(self, frame):
        """Call run() for one HTTP request and answer its response.

        The answer is written before the next request starts: after a crash the server
        requeues only the requests behind the one running, as never started.
        """
        params = frame.params
        # Records made while this request runs (a streamed body included) carry its id.
        self.log.request_id = params.get("request_id") if params.__class__ is dict else None
        try:
            try:
                response = self._score(params, frame.payload)
            finally:
                self.stdout_writer.send_partial_line()
            self._send_response(frame.request_id, response)
        finally:
            self.log.request_id = None

    def _score(self, params, payload):
        """The response to send; raises Failure for the error answers."""
        script = self.script or self._loaded_script()
        try:
            arguments = self._build_arguments(params, payload)
        except InputError as error:
            raise Failure(error.kind, error.message)
        except Exception as error:
            self._log_exception("Encountered Exception: ", error)
            raise Failure("internal", "run()'s arguments could not be made: {}".format(describe(error)), error)
        result, run_ms = self._call_run(script.run, arguments)
        return self._encode(result, run_ms)

    def _call_run(self, run, arguments):
        """run(**arguments) under the scoring timeout: (result, milliseconds it took)."""
        deadline_ms = self._deadline_ms
        if self.debugger.check():
            deadline_ms = None  # run() may stop at a breakpoint: no timeout while debugging
        started = time.perf_counter()
        try:
            if deadline_ms is None:
                result = run(**arguments)
            else:
                arm(deadline_ms)
                try:
                    result = run(**arguments)
                finally:
                    # The timer may go on until the runner waits for input (the next
                    # request's arm() then replaces it) or runs user code again.
                    disarm(keep_timer=True)
        except ScoringTimeout as timeout:
            self._log_exception("Encountered Exception: ", timeout)
            raise Failure("timeout", "run() did not return within {} ms".format(
                format_milliseconds(self.scoring_timeout_ms)), timeout)
        except BaseException as error:
            # Also SystemExit and KeyboardInterrupt: a failed request, not a dead runner.
            self._log_exception("Encountered Exception: ", error)
            raise Failure("user_error", "run() raised {}".format(describe(error)), error)
        return result, (time.perf_counter() - started) * 1000.0

    def _encode(self, result, run_ms):
        """run()'s result as a response; raises Failure when it cannot be encoded."""
        is_response = is_response_object(result)
        try:
            if is_response:
                stop_timer()  # the response object's code runs from here on
                self.log.info(SERVER_LOGGER, "run() output is HTTP Response")
                response = encode_result(result)
            else:
                response = json_response(result)
        except NotSerializable as error:
            cause = error.__cause__ or error
            self._log_exception("Encountered Exception: ", cause)
            what = "the response object run() returned cannot be sent" if is_response else \
                "the result of run() is not JSON-serializable"
            raise Failure("not_serializable", "{}: {}".format(what, error), cause)
        response.run_ms = run_ms
        return response

    def _send_response(self, request_id, response):
        """Send the answer now (a streamed one chunk by chunk, then its `end`)."""
        run_ms = response.run_ms
        if (
            request_id.__class__ is int
            and response.status == 200
            and response.run_failed is False
            and response.chunks is None
            and run_ms.__class__ is float
            and response.headers == _JSON_HEADERS
            and response.body
        ):
            body = response.body
            try:
                self.channel.send_line(_JSON_RESULT_LINE % (request_id, run_ms, len(body)), body)
            finally:
                response.close()
            return
        result = {
            "status": response.status,
            "headers": response.headers,
            "run_ms": response.run_ms,
            "run_failed": response.run_failed,
            "streaming": response.is_streaming,
        }
        if not response.is_streaming:
            try:
                self.channel.respond(request_id, result, response.body)
            finally:
                response.close()
            return
        self.channel.respond(request_id, result)
        self.channel.notify("end", {"id": request_id, "error": self._stream_chunks(request_id, response)})

    def _stream_chunks(self, request_id, response):
        """Send the body as `chunk` notifications; the error text if the body failed.

        Between chunks, a `cancel` for this request (the client went away or stopped
        reading) stops the body: the generator is closed, so its `finally` runs.
        """
        chunks = response.chunks
        cancel_requested = self.channel.cancel_requested
        try:
            for chunk in chunks:
                if chunk:
                    self.channel.notify("chunk", {"id": request_id}, chunk)
                if cancel_requested(request_id):
                    self.log.info(SERVER_LOGGER, "The server cancelled the streamed answer to request {}: the client"
                                  " stopped reading it; the body's generator is closed".format(request_id))
                    return CANCELLED_STREAM_ERROR
        except ChannelClosed:
            raise
        except BaseException as error:
            self._log_exception("Encountered Exception while streaming the response: ", error)
            return exception_summary(error)
        finally:
            try:
                close_iterator = getattr(chunks, "close", None)
                try:
                    if callable(close_iterator):
                        close_iterator()  # a wrapper generator (iter_encoded) first
                finally:
                    response.close()  # then the script's own generator
            finally:
                self.stdout_writer.send_partial_line()
        return None


# -- loading ------------------------------------------------------------------------


def prepare_and_load_script(params, log, debugger):
    """Logging, sys.path, debugger and contrib modules set up; then the script loaded."""
    entry_script = params.get("entry_script")
    app_root = params.get("app_root") or os.getcwd()
    set_root_level(params.get("log_level"))
    extend_sys_path(app_root, params.get("source_dir"))
    entry_folder = os.path.dirname(os.path.realpath(entry_script)) if entry_script else None
    try:
        apply_logging_json([app_root, entry_folder], log)
    except Exception as error:
        raise Failure("internal", "Invalid logging.json: {}".format(error), error)
    start_debugger(params, log)
    debugger.check()  # the server stops timing the import while a debugger is attached
    aml_request._rawHttpRequested = False  # the flag describes this script only
    install_contrib_modules()
    script = load_user_script(entry_script, app_root, log)
    if script.input_mode == RAWHTTP:
        request_class()  # imports Flask now, so the first request does not wait for it
    return script


# -- process set-up -----------------------------------------------------------------


def serve(rfile, wfile):
    """Serve the protocol on two binary streams until the input ends or `shutdown`.

    print(), sys.stdout and logging are forwarded to the server meanwhile and put back
    afterwards, so tests can call this with io.BytesIO streams.
    """
    channel = Channel(rfile, wfile)
    log = LogSender(channel)
    try:
        try:
            with forwarded_output(log) as stdout_writer:
                Runner(channel, log, stdout_writer).serve_forever()
        finally:
            stop_timer()
    except ChannelClosed:
        pass  # the server is gone: nothing left to answer


def take_over_stdio():
    """Keep fds 0 and 1 for the protocol; user code gets stderr as fd 1 and nothing on fd 0.

    Done before any user code runs, so that nothing the script writes to fd 1
    (print, a C library's printf, a child process) can corrupt a frame.
    """
    sys.stdout.flush()
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    if sys.platform == "win32":
        import msvcrt

        msvcrt.setmode(protocol_in, os.O_BINARY)
        msvcrt.setmode(protocol_out, os.O_BINARY)
    os.dup2(2, 1)
    null_input = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_input, 0)
    os.close(null_input)
    # Unbuffered both ways: a read or a write is one syscall; the channel keeps its own
    # input buffer (a second one here would hide input from its look-ahead poll, see
    # Channel.cancel_requested) and gathers each frame into one write itself.
    return os.fdopen(protocol_in, "rb", buffering=0), os.fdopen(protocol_out, "wb", buffering=0)


def run_exit_handlers_briefly():
    """Give the script's atexit handlers a moment; a stuck one must not keep us alive."""
    worker = threading.Thread(target=atexit._run_exitfuncs, name="azmlinf-atexit", daemon=True)
    worker.start()
    worker.join(EXIT_HANDLERS_GRACE_SECONDS)


def parse_command_line(argv):
    """The labels the server puts on the command line: {"worker": "0", "entry_script": "/abs/score.py"}.

    `runner.py --worker N --entry-script PATH` only names the process for a process list
    or a debugger's process picker: the script to load comes with `load`. Anything else
    on the command line is ignored, so that an older or newer server can still start us.
    """
    labels = {}
    options = {"--worker": "worker", "--entry-script": "entry_script"}
    index = 0
    while index < len(argv):
        argument = argv[index]
        name, separator, value = argument.partition("=")
        if name in options:
            if not separator:
                index += 1
                value = argv[index] if index < len(argv) else None
            if value is not None:
                labels[options[name]] = value
        index += 1
    return labels


def main(argv=None):
    labels = parse_command_line(sys.argv[1:] if argv is None else argv)
    # The user's script must not see our options: it gets the argv of a script run
    # directly (set again to the path `load` resolves, see script.py).
    sys.argv = [labels.get("entry_script", sys.argv[0])]
    rfile, wfile = take_over_stdio()
    # A process the script forks (os.fork(), multiprocessing) drops its copies of the
    # channel, so the server sees the end of the channel when the runner dies, and
    # never serves (forking.py).
    protect_channel_across_fork([rfile.fileno(), wfile.fileno()])
    faulthandler.enable()  # a crash in native code leaves a trace on stderr
    if hasattr(signal, "SIGINT"):
        # Ctrl+C in a terminal reaches the whole process group: the server decides
        # when runners stop, so the signal must not kill run() half-way.
        signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        serve(rfile, wfile)
    except BaseException:
        traceback.print_exc()
    finally:
        run_exit_handlers_briefly()
        sys.stderr.flush()
        # Exit now even if the script left non-daemon threads running.
        os._exit(0)


if __name__ == "__main__":
    main()
