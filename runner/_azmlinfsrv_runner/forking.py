"""The protocol channel across `fork()`: a process forked from the runner never serves.

A script may fork in run() (`os.fork()`, multiprocessing's default start method on
Linux before Python 3.14, libraries that fork). The child inherits the runner's
protocol descriptors; left alone, it would keep the server's pipes open after the
runner died (the server would not see the end of the channel) and, if it returned
into the runner's loop, it could read the server's next request or answer one.

`protect_channel_across_fork(fds)` registers a fork handler that, in the child, points
the protocol descriptors at the null device (the fd numbers stay valid for the file
objects that own them, so nothing closes a number reused by something else later) and
marks the process as a forked child: `in_forked_child()` is then true, the channel
ends the process instead of reading or writing a frame (`leave_if_forked_child`), and
log records go to stderr, which the server passes through.
"""

import os
import sys

_in_forked_child = False
_protocol_fds = ()


def in_forked_child():
    """True in a process forked from the runner after `protect_channel_across_fork`."""
    return _in_forked_child


def protect_channel_across_fork(fds):
    """In every child forked from now on, close our copies of `fds` and never serve."""
    global _protocol_fds
    _protocol_fds = tuple(fds)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child():
    global _in_forked_child
    _in_forked_child = True
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    try:
        for fd in _protocol_fds:
            try:
                os.dup2(null, fd, inheritable=False)
            except OSError:
                pass
    finally:
        os.close(null)


def leave_if_forked_child():
    """Called before the channel reads or writes: a forked child exits instead."""
    if _in_forked_child:
        try:
            sys.stderr.write(
                "azmlinfsrv: process {} (forked in the scoring script) returned into the runner's loop;"
                " it exits here without serving requests (end a forked child with os._exit()).\n".format(os.getpid()))
            sys.stderr.flush()
        finally:
            os._exit(0)
