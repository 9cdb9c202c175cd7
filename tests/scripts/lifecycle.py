# Misbehaves on request, to exercise the failure model. The body is JSON:
#   {"sleep": s}        sleep s seconds in Python (interruptible)
#   {"native_hang": s}  block SIGALRM, then sleep: like a C call that never returns
#   {"exit": code}      os._exit(code) in the middle of run()
#   {"segv": true}      die of SIGSEGV
#   {"pid": true}       answer the runner's pid
#   {"stderr_mb": n}    write n MB to stderr
# init() fails while the file named by LIFECYCLE_INIT_FAIL_MARKER exists.
import json
import os
import signal
import sys
import time


def init():
    marker = os.environ.get("LIFECYCLE_INIT_FAIL_MARKER")
    if marker and os.path.exists(marker):
        raise RuntimeError("init() refuses to start while %s exists" % marker)


def run(raw):
    request = json.loads(raw or "{}")
    if "sleep" in request:
        time.sleep(request["sleep"])
    if "native_hang" in request:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            time.sleep(request["native_hang"])
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    if "exit" in request:
        os._exit(request["exit"])
    if request.get("segv"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if "stderr_mb" in request:
        line = "x" * 1023 + "\n"
        for _ in range(request["stderr_mb"] * 1024):
            sys.stderr.write(line)
        sys.stderr.flush()
    return {"pid": os.getpid()}
