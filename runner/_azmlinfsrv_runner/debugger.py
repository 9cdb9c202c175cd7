"""Debuggers: starting debugpy as the server asks (connect or listen mode), and telling
whether a debugger is attached, so that a request stopped at a breakpoint is not cut
by the scoring timeout (PROTOCOL.md, `load` and `debugger`).

Three ways to attach, all ending in a pydevd inside this process:

- connect (`AZUREML_DEBUG_PORT`, the reference's way): the runner connects to a
  debugger that listens, and waits for it, before the script is imported;
- listen (`load` params `debug: {"mode": "listen", ...}`): the runner listens on
  127.0.0.1 and, when asked to, waits for a debugger before the script is imported;
- attach by pid: `python -m debugpy --pid` injects debugpy into the running process;
  the runner learns of it only by looking.

Looking costs a dict lookup and a C call, so it is done before every request.
"""

import os
import sys
import threading

from .errors import Failure
from .logs import SERVER_LOGGER

# Python 3.12+: pydevd registers itself as the debugger tool of sys.monitoring
# instead of installing a trace function.
_MONITORING = getattr(sys, "monitoring", None)
_DEBUGGER_ID = getattr(_MONITORING, "DEBUGGER_ID", None)


def is_debugger_attached():
    """Whether a debugger client is attached to this process now.

    debugpy (any mode, injected by pid too) answers itself once it is imported;
    otherwise a pydevd trace function (PyCharm's debugger, or debugpy imported under another name) or bdb
    (remote pdb variants) installed on this thread counts. Other tracers, such as
    coverage, do not: they never stop a request.
    """
    debugpy = sys.modules.get("debugpy")
    if debugpy is not None:
        try:
            # Its answer wins: pydevd traces (and on 3.12+ holds the debugger tool)
            # from listen() on, before any client has attached.
            return bool(debugpy.is_client_connected())
        except Exception:
            pass
    tracer = sys.gettrace()
    if tracer is not None and _is_debugger_tracer(tracer):
        return True
    if _DEBUGGER_ID is not None:
        try:
            return _MONITORING.get_tool(_DEBUGGER_ID) is not None
        except Exception:
            return False
    return False


def _is_debugger_tracer(tracer):
    module = getattr(tracer, "__module__", None) or type(tracer).__module__ or ""
    return "pydevd" in module or module == "bdb"


class DebuggerWatch:
    """Tells the server when a debugger comes or goes (the `debugger` notification).

    The server suspends its hard deadline for a worker while a debugger is attached;
    the runner does not arm the scoring timeout for a request that starts then.
    """

    def __init__(self, channel):
        self._channel = channel
        self.attached = False

    def check(self):
        """Look now; notify the server when the answer changed. Returns the answer."""
        attached = is_debugger_attached()
        if attached is not self.attached:
            self.attached = attached
            self._channel.notify("debugger", {"attached": attached})
        return attached

    def attached_during_run(self):
        """For the scoring timeout's signal handler: whether a debugger attached since
        run() started. The notification goes from another thread: the main thread may
        be in the middle of writing a frame, or stopped at a breakpoint.
        """
        if self.attached or not is_debugger_attached():
            return self.attached
        threading.Thread(target=self.check, name="azmlinf-debugger", daemon=True).start()
        return True


# -- starting debugpy ---------------------------------------------------------------


def _import_debugpy(why):
    try:
        import debugpy
    except ImportError:
        raise Failure(
            "internal",
            "{} needs the debugpy package in the Python environment that runs the scoring "
            "script, and {} cannot import it. Install it into that environment with "
            "`{} -m pip install debugpy` and start the server again.".format(why, sys.executable, sys.executable),
        )
    return debugpy


def start_debugger(params, log):
    """Set up the debugger `load` asks for, before the script is imported."""
    debug = params.get("debug")
    if isinstance(debug, dict) and debug.get("mode") == "listen":
        listen(debug, log)
    connect(params.get("debug_port", os.environ.get("AZUREML_DEBUG_PORT")), log)


def listen(debug, log):
    """--debug_port: listen on 127.0.0.1 for a debugger; --debug_wait: wait for it."""
    port = debug.get("port")
    if port.__class__ is not int or not 0 < port < 65536:
        raise Failure("internal", "`load` needs debug.port as a port number, got {!r}".format(port))
    debugpy = _import_debugpy("--debug_port (AZMLINFSRV_DEBUG_PORT)")
    try:
        debugpy.listen(("127.0.0.1", port))
    except Exception as error:
        raise Failure(
            "internal",
            "Cannot listen for a debugger on 127.0.0.1:{}: {}. Another program (or another "
            "azmlinfsrv still running) may be using the port: stop it or choose another "
            "--debug_port.".format(port, error),
            error,
        )
    log.warning(SERVER_LOGGER, "Debugger: listening on 127.0.0.1:{} (pid {}). Attach a debugpy client "
                "(VS Code: \"Python Debugger: Remote Attach\") to that address.".format(port, os.getpid()))
    if debug.get("wait"):
        log.warning(SERVER_LOGGER, "Debugger: waiting for a debugger to attach to 127.0.0.1:{} before the "
                    "scoring script is imported (--debug_wait)...".format(port))
        debugpy.wait_for_client()
        log.info(SERVER_LOGGER, "Debugger: attached; loading the scoring script")


def connect(port, log):
    """AZUREML_DEBUG_PORT: connect to a debugger waiting on that port, as the reference does."""
    if port in (None, ""):
        return
    log.warning(SERVER_LOGGER, "Starting the inference server in DEBUGGING mode because AZUREML_DEBUG_PORT is set."
                " This environment variable should not be set in a production environment.")
    try:
        import debugpy
    except ImportError:
        raise Failure("internal", "Cannot connect to a debugger because debugpy is not installed in {}: install "
                      "it with `{} -m pip install debugpy`.".format(sys.executable, sys.executable))
    log.info(SERVER_LOGGER, "Connecting to debugger at port {}...".format(port))
    try:
        debugpy.connect(int(port))
        debugpy.wait_for_client()
    except Exception as error:
        raise Failure("internal", "Cannot connect to a debugger at port {}: {}".format(port, error), error)
