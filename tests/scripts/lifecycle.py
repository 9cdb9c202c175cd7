# Misbehaves on request, to exercise the failure model. The body is JSON:
#   {"record": path, "tag": t}  first append the line t to path: what ran, in order
#   {"gate": path}      then wait until path exists: the test decides when run() ends
#   {"sleep": s}        sleep s seconds in Python (interruptible)
#   {"native_hang": s}  block SIGALRM, then sleep: like a C call that never returns
#   {"exit": code}      os._exit(code) in the middle of run()
#   {"segv": true}      die of SIGSEGV
#   {"pid": true}       answer the runner's pid
#   {"interrupt": true} raise KeyboardInterrupt in run()
#   {"stderr_mb": n}    write n MB to stderr
#   {"print": text}     print(text) (a log line the server writes before the answer)
#   {"fork_sleeper": path}  fork a child that writes its pid to path and sleeps 30 s;
#                       run() goes on once the pid is written
#   {"shell_pidfile": path} with SIGALRM blocked (a native hang), run
#                       sh -c 'echo $$ > path; exec sleep 100000' through os.system
# init() fails while the file named by LIFECYCLE_INIT_FAIL_MARKER exists.
# While the file named by LIFECYCLE_CRASH_MARKER exists, the process dies right after
# init() and in run(), before answering anything: a crash loop.
import json
import os
import signal
import sys
import threading
import time


def is_crash_looping():
    marker = os.environ.get("LIFECYCLE_CRASH_MARKER")
    return bool(marker) and os.path.exists(marker)


def die_soon():
    # Right after init() has returned and the server has been told so.
    time.sleep(0.05)
    os._exit(7)


def init():
    marker = os.environ.get("LIFECYCLE_INIT_FAIL_MARKER")
    if marker and os.path.exists(marker):
        raise RuntimeError("init() refuses to start while %s exists" % marker)
    if is_crash_looping():
        threading.Thread(target=die_soon, daemon=True).start()


def run(raw):
    if is_crash_looping():
        os._exit(7)
    request = json.loads(raw or "{}")
    if "record" in request:
        # One write of a whole line, so that the test never reads half a tag.
        with open(request["record"], "a") as runs:
            runs.write("%s\n" % request.get("tag", ""))
    if "gate" in request:
        deadline = time.monotonic() + 60
        while not os.path.exists(request["gate"]) and time.monotonic() < deadline:
            time.sleep(0.005)
    if "print" in request:
        print(request["print"])
    if "fork_sleeper" in request:
        pid_path = request["fork_sleeper"]
        if os.fork() == 0:
            with open(pid_path + ".tmp", "w") as pid_file:
                pid_file.write(str(os.getpid()))
            os.rename(pid_path + ".tmp", pid_path)
            time.sleep(30)
            os._exit(0)
        # The child is known (its pid written) before run() goes on.
        deadline = time.monotonic() + 10
        while not os.path.exists(pid_path) and time.monotonic() < deadline:
            time.sleep(0.005)
    if "shell_pidfile" in request:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        os.system("sh -c 'echo $$ > %s; exec sleep 100000'" % request["shell_pidfile"])
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
    if request.get("interrupt"):
        raise KeyboardInterrupt()
    if request.get("segv"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if "stderr_mb" in request:
        line = "x" * 1023 + "\n"
        for _ in range(request["stderr_mb"] * 1024):
            sys.stderr.write(line)
        sys.stderr.flush()
    return {"pid": os.getpid()}
