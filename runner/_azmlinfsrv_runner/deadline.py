"""The soft scoring timeout: interrupts a run() that overstays SCORING_TIMEOUT_MS.

Like the reference server, the runner arms a SIGALRM interval timer around the run()
call and raises from the signal handler, so Python code (and time.sleep) is interrupted
on time and the runner keeps serving. This only works in the main thread of a platform
with signal.setitimer (not Windows); elsewhere run() is not interrupted and the
server's hard timeout (which kills the runner) is the only limit.

A signal handler runs between any two bytecodes, including the ones that write a
frame to the server. Raising there would leave half a frame on the channel, so frame
writes made while a deadline runs happen inside a shield (`enter_shield()` /
`leave_shield()`, or `uninterruptible()`), which holds the timeout back until the
frame is complete and raises it then.

Every request arms and disarms the deadline, so both are kept to one setitimer()
at most: the handler is installed once and stays (it ignores an alarm when no
deadline is armed), and the runner leaves the timer running after run() until it
would wait for input, so that the next request's arm() replaces it.
"""

import contextlib
import signal
import threading

_MAIN_THREAD_ID = threading.main_thread().ident

_HAS_TIMER = hasattr(signal, "setitimer")
if _HAS_TIMER:
    import _signal

    # The C functions themselves: signal.getsignal() wraps its answer in an enum.
    _getsignal = _signal.getsignal
    _setitimer = signal.setitimer
    _ITIMER_REAL = int(signal.ITIMER_REAL)
    _SIGALRM = int(signal.SIGALRM)


class ScoringTimeout(BaseException):
    """Raised inside run() when the scoring timeout passes.

    A BaseException, so that a script's `except Exception:` cannot swallow it.
    """

    __module__ = "azmlinfsrv"  # the name tracebacks show: azmlinfsrv.ScoringTimeout

    def __init__(self, timeout_ms):
        super().__init__(
            "Script failed to finish execution within the allocated time: {}ms".format(
                format_milliseconds(timeout_ms)
            )
        )
        self.timeout_ms = timeout_ms


def format_milliseconds(milliseconds):
    """Render a timeout as the reference does: `1000`, not `1000.0`."""
    if float(milliseconds).is_integer():
        return str(int(milliseconds))
    return str(milliseconds)


def can_interrupt_run():
    """Whether a timer signal can interrupt run() from where we are."""
    return _HAS_TIMER and threading.get_ident() == _MAIN_THREAD_ID


class _AlarmState:
    """What the SIGALRM handler needs to know; touched only by the main thread."""

    armed_timeout_ms = None  # the running deadline, None when disarmed
    timer_running = False  # the interval timer may still fire (its alarm is ignored when disarmed)
    shield_depth = 0  # > 0 while the main thread writes a frame
    pending_timeout = None  # a timeout held back by the shield
    # () -> bool: whether a debugger is attached now (set by the runner); a debugger
    # that attached while run() was already under way holds the timeout back too.
    debugger_attached = None


_state = _AlarmState()


def _on_alarm(signum, frame):
    """SIGALRM handler: raise the timeout, or hold it back while a frame is written."""
    if _state.armed_timeout_ms is None:
        return
    if _state.debugger_attached is not None and _state.debugger_attached():
        # run() may be stopped at a breakpoint: a developer is looking at it.
        _state.armed_timeout_ms = None
        return
    timeout = ScoringTimeout(_state.armed_timeout_ms)
    _state.armed_timeout_ms = None
    if _state.shield_depth:
        _state.pending_timeout = timeout
        return
    raise timeout


def watch_for_debugger(is_attached):
    """Make the deadline give way when `is_attached()` says a debugger is attached."""
    _state.debugger_attached = is_attached


# The script's own SIGALRM handler, put back after each run() (None: none to put back).
_displaced_handler = None


def arm(timeout_ms):
    """Start the deadline of one run(): main thread only, `timeout_ms` > 0, POSIX.

    Called for every request, so it costs one setitimer() and no more: our handler
    stays installed between requests (signal.signal() is slow: it converts to and
    from enums). A handler the script installed itself (in init(), or in a previous
    run()) is displaced for the run and put back by disarm(), as a per-run install
    and restore would do.
    """
    global _displaced_handler
    handler = _getsignal(_SIGALRM)
    if handler is not _on_alarm:
        if callable(handler):
            _displaced_handler = handler
        signal.signal(signal.SIGALRM, _on_alarm)
    _state.pending_timeout = None
    _state.armed_timeout_ms = timeout_ms
    _state.timer_running = True
    _setitimer(_ITIMER_REAL, timeout_ms / 1000.0)


def disarm(keep_timer=False):
    """End the deadline started by arm(): no timeout can be raised after this.

    keep_timer=True leaves the interval timer running, to save its setitimer() when
    the next arm() comes first (pipelined requests): an alarm from it is ignored, and
    stop_timer() must be called before the process waits or runs other user code, so
    that the alarm does not interrupt a system call there (EINTR).
    """
    global _displaced_handler
    _state.armed_timeout_ms = None
    _state.pending_timeout = None
    if _displaced_handler is not None:
        stop_timer()  # the script's own handler must not get our alarm
        handler, _displaced_handler = _displaced_handler, None
        signal.signal(signal.SIGALRM, handler)
    elif not keep_timer:
        stop_timer()


def stop_timer():
    """Stop the interval timer a disarm(keep_timer=True) left running, if any."""
    if _state.timer_running:
        _state.timer_running = False
        _setitimer(_ITIMER_REAL, 0)


@contextlib.contextmanager
def scoring_deadline(timeout_ms):
    """Run the body with a deadline of `timeout_ms` (no deadline when <= 0 or unsupported).

    The runner calls arm()/disarm() directly on its hot path; this is the same as a
    context manager.
    """
    if not timeout_ms or timeout_ms <= 0 or not can_interrupt_run():
        yield
        return
    arm(timeout_ms)
    try:
        yield
    finally:
        disarm()


def shield_needed():
    """Whether a write from here must be shielded: a deadline is running in this thread.

    False outside run() (nothing can raise then) and in other threads (the handler
    only runs in the main thread), so most writes skip the shield.
    """
    return _state.armed_timeout_ms is not None and threading.get_ident() == _MAIN_THREAD_ID


def enter_shield():
    """Hold back a scoring timeout until leave_shield(); main thread only."""
    _state.shield_depth += 1


def leave_shield(quietly=False):
    """End enter_shield(); raise the timeout it held back, if any, once all shields are done.

    quietly=True (the write failed): keep the timeout pending, the write's error wins.
    """
    _state.shield_depth -= 1
    if not quietly and _state.shield_depth == 0 and _state.pending_timeout is not None:
        timeout, _state.pending_timeout = _state.pending_timeout, None
        raise timeout


@contextlib.contextmanager
def uninterruptible():
    """Hold back a scoring timeout until the body (a frame write) is done."""
    if threading.get_ident() != _MAIN_THREAD_ID:
        # The handler only ever runs in the main thread: nothing to hold back here.
        yield
        return
    _state.shield_depth += 1
    try:
        yield
    finally:
        _state.shield_depth -= 1
    # Reached only when the body succeeded: an error from the write itself wins.
    if _state.shield_depth == 0 and _state.pending_timeout is not None:
        timeout, _state.pending_timeout = _state.pending_timeout, None
        raise timeout
