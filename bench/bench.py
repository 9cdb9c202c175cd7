#!/usr/bin/env python3
"""Benchmark orchestration: runs both servers, the ceilings and wrk, prints one table.

Called by bench/run.sh, which installs the tools and builds the binaries first.
Standard library only. Every server is started in its own process group and
recorded in a pid file, so run.sh's EXIT trap can stop anything left behind even if
this script is killed.

Figures:
  * wrk against POST /score for each (script, workers, connections) point;
  * the ceilings: a static std-only Rust server (no Python) and run() in a plain
    Python loop (no HTTP);
  * start-up: process start to the first 200 on GET /, with a script whose init()
    does not sleep, median of several starts;
  * memory: RSS (and PSS) summed over the server's process tree after warm-up.
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SCRIPTS_DIR = BENCH_DIR / "scripts"
WRK_LUA = BENCH_DIR / "wrk_post.lua"

SERVERS = ("ref", "ours")
HELLO_BODY = b'{"data": [1, 2, 3]}'
ECHO_BODY_TARGET_BYTES = 1_000_000

# How much each size measures. "small" is the CI size (about a minute of load),
# "full" is by hand (a few minutes, both cores busy).
SIZES = {
    "small": {
        "duration_s": 2,
        "warmup_s": 1,
        "startup_repeats": 3,
        "pyloop_s": 2,
        "hello_points": [(1, 1), (1, 64), (2, 64)],  # (workers, connections)
        "echo_connections": [1, 4],
        "static_connections": [1, 64],
    },
    "full": {
        "duration_s": 8,
        "warmup_s": 2,
        "startup_repeats": 5,
        "pyloop_s": 3,
        "hello_points": [(w, c) for w in (1, 2) for c in (1, 8, 64)],
        "echo_connections": [1, 4],
        "static_connections": [1, 8, 64],
    },
}

READY_TIMEOUT_S = 60
OTHER_CPU_WARNING_PERCENT = 15
STOP_GRACE_S = 10


class MeasurementError(Exception):
    """A point could not be measured (server died, wrk failed)."""


class StartError(MeasurementError):
    """A server never became ready: its later measurements are skipped, not retried."""


# --------------------------------------------------------------------------- servers


def free_port(taken):
    """A port the kernel says is free right now and not handed out before in this run:
    two servers started side by side must not get the same one before either binds."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


class PidFile:
    """Process groups currently running, one per line, for run.sh's EXIT trap."""

    def __init__(self, path):
        self.path = Path(path)
        self.groups = set()

    def add(self, pgid):
        self.groups.add(pgid)
        self._write()

    def remove(self, pgid):
        self.groups.discard(pgid)
        self._write()

    def _write(self):
        self.path.write_text("".join(f"{pgid}\n" for pgid in sorted(self.groups)))


class Server:
    """One server process (and its children) in its own process group."""

    def __init__(self, name, port, argv, env, log_path, pid_file, work_dir):
        self.name = name
        self.port = port
        self.argv = argv
        self.env = env
        self.log_path = Path(log_path)
        self.pid_file = pid_file
        self.work_dir = work_dir
        self.process = None
        self.started_at = None

    def start(self):
        log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=self.work_dir, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.pid_file.add(self.process.pid)

    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """SIGTERM to the whole group, then SIGKILL after a grace period."""
        if self.process is None:
            return
        pgid = self.process.pid
        signal_group(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        # Children (runners, gunicorn workers) may outlive the leader: kill the rest.
        signal_group(pgid, signal.SIGKILL)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.pid_file.remove(pgid)
        self.process = None

    def log_tail(self, lines=15):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def wait_ready(self, timeout_s=READY_TIMEOUT_S):
        """Polls GET / until 200; returns seconds since start(). Raises if the server dies."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if not self.is_running():
                raise StartError(
                    f"{self.name} exited with status {self.process.returncode} before it was "
                    f"ready (log {self.log_path})\n{self.log_tail()}")
            if get_status(self.port, "/", deadline - time.perf_counter()) == 200:
                return time.perf_counter() - self.started_at
            time.sleep(0.005)
        raise StartError(f"{self.name} not ready after {timeout_s} s (log {self.log_path})")


def signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def get_status(port, path, timeout_s):
    """Status of GET path, or None when nothing answers yet. The reference holds the
    request open until init() ends, so the timeout is the whole remaining wait."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=max(timeout_s, 0.1))
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


class ServerFactory:
    """Knows how to build each server's command line and environment."""

    def __init__(self, args, pid_file):
        self.args = args
        self.pid_file = pid_file
        self.ports_handed_out = set()
        # Server logs of this run only: the last run's are removed so none is mistaken
        # for this one's.
        self.log_dir = Path(args.out_dir) / "logs" / "servers"
        self.work_dir = Path(args.out_dir) / "work"
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        venv = Path(args.python).parent.parent
        # Both servers (and the plain-Python loop) run the same interpreter: the
        # throw-away venv's. Ours finds it through VIRTUAL_ENV / PATH.
        self.env = dict(os.environ)
        self.env["VIRTUAL_ENV"] = str(venv)
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self.env.pop("PYTHONHOME", None)
        self.env["PYTHONUNBUFFERED"] = "1"

    def binary(self, server):
        return {"ref": self.args.reference, "ours": self.args.ours,
                "static": self.args.static_server}[server]

    def make(self, server, script, workers, label):
        port = free_port(self.ports_handed_out)
        if server == "static":
            argv = [self.binary("static"), str(port)]
        else:
            argv = [self.binary(server), "--entry_script", str(SCRIPTS_DIR / script),
                    "--port", str(port), "--worker_count", str(workers)]
        log_path = self.log_dir / f"{server}-{label}.log"
        return Server(server, port, argv, self.env, log_path, self.pid_file, self.work_dir)


# --------------------------------------------------------------------------- wrk


def run_wrk(wrk, port, connections, duration_s, body_file):
    """One wrk run; returns req/s, latencies (ms) and error counts from wrk_post.lua."""
    # wrk needs threads <= connections; 2 threads otherwise, as the box has 2 cores.
    threads = 1 if connections == 1 else 2
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s",
            "-s", str(WRK_LUA), f"http://127.0.0.1:{port}/score"]
    env = dict(os.environ, BENCH_BODY_FILE=str(body_file))
    try:
        finished = subprocess.run(argv, env=env, capture_output=True, text=True,
                                  timeout=duration_s + 60)
    except subprocess.TimeoutExpired as error:
        raise MeasurementError(f"wrk did not finish: {error}") from error
    match = re.search(r"^BENCH_JSON (\{.*\})$", finished.stdout, re.MULTILINE)
    if finished.returncode != 0 or match is None:
        raise MeasurementError(f"wrk failed ({finished.returncode}): {finished.stderr.strip()}"
                               f" {finished.stdout.strip()[-500:]}")
    raw = json.loads(match.group(1))
    socket_errors = sum(raw[key] for key in ("err_connect", "err_read", "err_write", "err_timeout"))
    seconds = raw["duration_us"] / 1e6
    return {
        "threads": threads,
        "connections": connections,
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": raw["latency_mean_us"] / 1000,
        "http_errors": raw["err_status"],
        "socket_errors": socket_errors,
        "raw": raw,
    }


# --------------------------------------------------------------------------- /proc


def process_tree(root_pid):
    """root_pid and all its descendants, from the ppid field of /proc/*/stat."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def proc_kib(pid, file_name, field):
    """A 'Field:   N kB' value from /proc/PID/<file_name>, 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file_name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_of(root_pid):
    tree = process_tree(root_pid)
    return {
        "processes": len(tree),
        "root_rss_mib": proc_kib(root_pid, "status", "VmRSS") / 1024,
        "tree_rss_mib": sum(proc_kib(pid, "status", "VmRSS") for pid in tree) / 1024,
        # PSS splits shared pages (forked workers, shared libraries) between their
        # users, so it does not double count; informational next to the RSS target.
        "tree_pss_mib": sum(proc_kib(pid, "smaps_rollup", "Pss") for pid in tree) / 1024,
    }


# --------------------------------------------------------------------------- scenarios


class Bench:
    def __init__(self, args):
        self.args = args
        self.size = SIZES[args.size]
        self.duration_s = args.duration or self.size["duration_s"]
        self.pid_file = PidFile(args.pid_file)
        self.factory = ServerFactory(args, self.pid_file)
        self.out_dir = Path(args.out_dir)
        self.hello_body = self.out_dir / "body_hello.json"
        self.echo_body = self.out_dir / "body_1mb.json"
        self.results = {"hello": {}, "echo": {}, "static": {}, "pyloop": {}, "startup": {},
                        "memory": {}, "na": {}}
        self.broken_servers = set()
        self.servers_measured = [name for name in SERVERS if self.binary_usable(name)]
        # Filled in by main(): how busy the machine was, and how long measuring took.
        self.load_before = 0.0
        self.steal = 0.0
        self.other_cpu = 0.0
        self.elapsed_s = 0.0

    def binary_usable(self, server):
        if server == "ours" and not self.args.ours:
            self.results["na"]["ours"] = self.args.ours_note or "no binary given"
            return False
        return True

    def log(self, message):
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def write_bodies(self):
        self.hello_body.write_bytes(HELLO_BODY)
        self.echo_body.write_bytes(make_echo_body(ECHO_BODY_TARGET_BYTES))

    def run_all(self):
        self.write_bodies()
        self.measure_pyloop("hello")
        self.measure_static()
        for server in self.servers_measured:
            self.measure_startup(server)
        for workers in sorted({w for w, _ in self.size["hello_points"]}):
            connections = [c for w, c in self.size["hello_points"] if w == workers]
            self.measure_hello(workers, connections)
        self.measure_echo()

    def guarded(self, key, server, action):
        """Runs one step; a failure becomes an n/a entry with its reason and None. A server
        that failed to start once is not started again (a hang would cost a minute each)."""
        if server in self.broken_servers:
            self.results["na"][key] = f"skipped: {server} failed to start earlier"
            return None
        try:
            return action()
        except MeasurementError as error:
            if isinstance(error, StartError):
                self.broken_servers.add(server)
            self.log(f"n/a {key}: {error}")
            self.results["na"][key] = str(error).splitlines()[0]
            return None

    def measure_pyloop(self, name):
        """run() in a plain Python loop (bench/pyloop.py) under the servers' interpreter."""
        script, body = {"hello": ("hello_noinit_sleep.py", self.hello_body),
                        "echo": ("echo.py", self.echo_body)}[name]
        self.log(f"plain Python loop: {name}, {self.size['pyloop_s']} s")
        argv = [self.args.python, str(BENCH_DIR / "pyloop.py"), str(SCRIPTS_DIR / script),
                str(body), str(self.size["pyloop_s"])]
        finished = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if finished.returncode != 0:
            self.results["na"][f"pyloop-{name}"] = finished.stderr.strip()[-300:]
            return
        self.results["pyloop"][name] = json.loads(finished.stdout)

    def start_ready(self, server, script, workers, label, started):
        """Starts one server (appending it to started, so it is stopped whatever happens)
        and waits until it serves; then one POST /score must answer 200."""
        instance = self.factory.make(server, script, workers, label)
        started.append(instance)
        instance.start()
        if server == "static":
            wait_for_port(instance)
        else:
            instance.wait_ready()
            check_score(instance.port, self.body_of(script))
        return instance

    def body_of(self, script):
        return self.echo_body if script == "echo.py" else self.hello_body

    def load_point(self, instance, connections, body, duration_s, is_measured):
        what = f"{duration_s} s" if is_measured else f"{duration_s} s warm-up"
        self.log(f"  {instance.name}: {connections} connection(s), {what}")
        point = run_wrk(self.args.wrk, instance.port, connections, duration_s, body)
        if not instance.is_running():
            raise MeasurementError(f"{instance.name} died during the run "
                                   f"(log {instance.log_path})\n{instance.log_tail()}")
        return point

    def side_by_side(self, servers, scenario, script, workers, connections, warmup_connections,
                     points_of, after_load=None, before_measured=None):
        """Starts every server for one scenario, then runs each connection count against
        them back to back, so both figures of a ratio come from the same half-minute
        (this box's speed drifts over minutes). An idle server costs the other nothing.
        A server that fails a step drops out of the scenario; the others go on.
        before_measured() runs between the warm-up and the measured runs."""
        started, live = [], {}
        body = self.body_of(script)
        try:
            for server in servers:
                instance = self.guarded(f"{scenario}-{server}", server, lambda: self.start_ready(
                    server, script, workers, scenario, started))
                if instance is not None:
                    live[server] = instance
            if workers > 1:
                # GET / may turn 200 when the first runner is ready; let the others
                # finish their init() too before loading.
                time.sleep(1.5)
            runs = [(warmup_connections, self.size["warmup_s"], False)]
            runs += [(count, self.duration_s, True) for count in connections]
            for count, duration_s, is_measured in runs:
                if is_measured and before_measured:
                    before_measured()
                    before_measured = None
                for server, instance in list(live.items()):
                    point = self.guarded(f"{scenario}-{server}", server, lambda: self.load_point(
                        instance, count, body, duration_s, is_measured))
                    if point is None:
                        del live[server]
                    elif is_measured:
                        points_of(server)[count] = point
            for server, instance in live.items():
                if after_load:
                    after_load(server, instance)
        finally:
            for instance in started:
                instance.stop()

    def measure_static(self):
        self.log("static Rust server (ceiling)")
        self.side_by_side(["static"], "static", "hello.py", 1, self.size["static_connections"], 8,
                          lambda _server: self.results["static"])

    def measure_startup(self, server):
        """Process start to first 200 on GET /, init() without sleep; median of N."""
        repeats = self.size["startup_repeats"]
        self.log(f"start-up: {server}, {repeats} starts")

        def once(index):
            started = []
            try:
                instance = self.factory.make(server, "hello_noinit_sleep.py", 1, f"startup{index}")
                started.append(instance)
                instance.start()
                return instance.wait_ready()
            finally:
                for instance in started:
                    instance.stop()

        seconds = self.guarded(f"startup-{server}", server,
                               lambda: [once(index) for index in range(repeats)])
        if seconds:
            self.results["startup"][server] = {
                "median_ms": statistics.median(seconds) * 1000,
                "all_ms": [round(value * 1000, 1) for value in seconds],
            }

    def measure_hello(self, workers, connections):
        self.log(f"hello, {workers} worker(s)")

        def record_memory(server, instance):
            # After warm-up and load, while the server is still up.
            self.results["memory"][f"{server}-w{workers}"] = memory_of(instance.process.pid)

        def points_of(server):
            return self.results["hello"].setdefault(f"{server}-w{workers}", {})

        self.side_by_side(self.servers_measured, f"hello-w{workers}", "hello.py", workers,
                          connections, 8, points_of, record_memory)

    def measure_echo(self):
        self.log("1 MB echo, 1 worker")
        connections = self.size["echo_connections"]
        # The plain loop's figure is subtracted from ours at 1 connection, so it is taken
        # right before those runs: this box's speed drifts by more than the 2 ms target.
        self.side_by_side(self.servers_measured, "echo", "echo.py", 1, connections,
                          max(connections),
                          lambda server: self.results["echo"].setdefault(server, {}),
                          before_measured=lambda: self.measure_pyloop("echo"))


def check_score(port, body_file):
    """One POST /score before the load: figures for a server answering errors mean nothing."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/score", body=Path(body_file).read_bytes(),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise MeasurementError(f"POST /score failed before the load: {error}") from error
    finally:
        connection.close()
    if response.status != 200:
        raise MeasurementError(f"POST /score answered {response.status} before the load: "
                               f"{answer[:200]!r}")


def wait_for_port(instance, timeout_s=10):
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if not instance.is_running():
            raise StartError(f"static server exited: {instance.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", instance.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise StartError("static server did not listen")


def make_echo_body(target_bytes):
    """About target_bytes of JSON shaped like a typical scoring request: a list of
    records with numbers and short strings (deterministic, no randomness)."""
    records, size, index = [], 20, 0
    while size < target_bytes:
        record = {"id": index, "name": f"item-{index:07d}", "score": index * 0.731 % 1,
                  "features": [index % 97, (index * 7) % 101, (index * 13) % 103, 0.5]}
        records.append(record)
        size += len(json.dumps(record)) + 2
        index += 1
    return json.dumps({"data": records}).encode()


# --------------------------------------------------------------------------- report


def fmt_number(value, digits=0):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def fmt_ratio(numerator, denominator):
    if numerator is None or denominator in (None, 0):
        return "n/a"
    ratio = numerator / denominator
    # Small ratios (ours against a ceiling) need significant digits, not two decimals.
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def point(results, section, key, connections):
    return (results[section].get(key) or {}).get(connections)


def field(entry, name):
    return None if entry is None else entry[name]


def errors_text(entry):
    if entry is None:
        return "n/a"
    return f"{entry['http_errors']}/{entry['socket_errors']}"


class Report:
    """Turns the raw results into the markdown table (one document, several parts)."""

    def __init__(self, bench):
        self.bench = bench
        self.results = bench.results
        self.lines = []

    def add(self, *lines):
        self.lines.extend(lines)

    def render(self):
        self.header()
        self.load_table()
        self.ceilings_table()
        self.startup_memory_table()
        self.targets_table()
        self.notes()
        return "\n".join(self.lines) + "\n"

    def header(self):
        bench = self.bench
        self.add(f"# azmlinfsrv benchmark ({bench.args.size} size)", "",
                 f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, "
                 f"{os.cpu_count()} cores, Python {python_version(bench.args.python)}, "
                 f"{wrk_version(bench.args.wrk)}, commit {git_commit()}. "
                 f"Loopback only; {bench.duration_s} s per point after a "
                 f"{bench.size['warmup_s']} s warm-up; ours is `{bench.args.ours or 'n/a'}`; "
                 f"keep-alive on; wrk `-t1` for 1 "
                 f"connection, `-t2` otherwise (wrk shares the 2 cores with the server). "
                 f"Load average before the run {bench.load_before:.2f}; during it, processes "
                 f"outside the benchmark used {bench.other_cpu:.0f}% of a core and CPU steal "
                 f"was {bench.steal:.1f}%; {bench.elapsed_s:.0f} s of measuring. Single runs "
                 f"on a shared 2-core box vary by 10-30%: read ratios, not digits.", "")
        if bench.other_cpu > OTHER_CPU_WARNING_PERCENT:
            self.add(f"**Other work on the machine used {bench.other_cpu:.0f}% of a core "
                     f"during this run: the figures are skewed; run again on a quiet machine "
                     f"before drawing conclusions.**", "")

    def load_table(self):
        results = self.results
        self.add("## Requests/s and latency (POST /score)", "",
                 "| script | workers | conns | ref req/s | ours req/s | ours/ref "
                 "| ref p50 ms | ours p50 ms | ref p99 ms | ours p99 ms | p99 ours/ref "
                 "| errors ref | errors ours |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        rows = [("hello", f"w{w}", w, c) for w, c in self.bench.size["hello_points"]]
        rows += [("echo 1 MB", None, 1, c) for c in self.bench.size["echo_connections"]]
        for label, worker_key, workers, conns in rows:
            if worker_key:
                ref = point(results, "hello", f"ref-{worker_key}", conns)
                ours = point(results, "hello", f"ours-{worker_key}", conns)
            else:
                ref = point(results, "echo", "ref", conns)
                ours = point(results, "echo", "ours", conns)
            self.add(f"| {label} | {workers} | {conns} "
                     f"| {fmt_number(field(ref, 'rps'))} | {fmt_number(field(ours, 'rps'))} "
                     f"| {fmt_ratio(field(ours, 'rps'), field(ref, 'rps'))} "
                     f"| {fmt_number(field(ref, 'p50_ms'), 3)} "
                     f"| {fmt_number(field(ours, 'p50_ms'), 3)} "
                     f"| {fmt_number(field(ref, 'p99_ms'), 3)} "
                     f"| {fmt_number(field(ours, 'p99_ms'), 3)} "
                     f"| {fmt_ratio(field(ours, 'p99_ms'), field(ref, 'p99_ms'))} "
                     f"| {errors_text(ref)} | {errors_text(ours)} |")
        for conns, entry in sorted(results["static"].items()):
            self.add(f"| static Rust (ceiling) | - | {conns} | | {fmt_number(entry['rps'])} | "
                     f"| | {fmt_number(entry['p50_ms'], 3)} | | {fmt_number(entry['p99_ms'], 3)} "
                     f"| | | {errors_text(entry)} |")
        self.add("", "Errors are `HTTP 4xx-5xx answers/socket errors` (connect, read, write, "
                 "timeout after 10 s) as counted by wrk; a POST /score must answer 200 before "
                 "each server's load starts.", "")

    def ceilings_table(self):
        results = self.results
        self.add("## How close to the ceilings", "",
                 "| ceiling | its figure | ours | ours / ceiling |", "|---|---|---|---|")
        for conns, entry in sorted(results["static"].items()):
            ours = point(results, "hello", "ours-w1", conns)
            self.add(f"| static Rust server, {conns} conn(s), req/s | {fmt_number(entry['rps'])} "
                     f"| {fmt_number(field(ours, 'rps'))} (hello, 1 worker) "
                     f"| {fmt_ratio(field(ours, 'rps'), entry['rps'])} |")
        loop = results["pyloop"].get("hello")
        ours_1 = point(results, "hello", "ours-w1", 1)
        if loop:
            self.add(f"| Python loop, hello run()+json.dumps, calls/s "
                     f"| {fmt_number(loop['calls_per_s'])} ({loop['median_call_us']:.1f} µs/call) "
                     f"| {fmt_number(field(ours_1, 'rps'))} req/s, p50 "
                     f"{fmt_number(field(ours_1, 'p50_ms'), 3)} ms (1 conn, 1 worker) "
                     f"| {fmt_ratio(field(ours_1, 'rps'), loop['calls_per_s'])} |")
        echo_loop = results["pyloop"].get("echo")
        echo_1 = point(results, "echo", "ours", 1)
        if echo_loop:
            self.add(f"| Python loop, 1 MB json.loads+json.dumps, calls/s "
                     f"| {fmt_number(echo_loop['calls_per_s'], 1)} "
                     f"({echo_loop['median_call_us'] / 1000:.2f} ms/call) "
                     f"| {fmt_number(field(echo_1, 'rps'), 1)} req/s, p50 "
                     f"{fmt_number(field(echo_1, 'p50_ms'), 1)} ms (1 conn) "
                     f"| {fmt_ratio(field(echo_1, 'rps'), echo_loop['calls_per_s'])} |")
        self.add("")

    def startup_memory_table(self):
        results = self.results
        startup = results["startup"]
        repeats = self.bench.size["startup_repeats"]

        def startup_ms(server):
            return (startup.get(server) or {}).get("median_ms")

        def memory(key, name):
            return (results["memory"].get(key) or {}).get(name)

        rows = [
            (f"start-up to first 200 on GET /, ms (median of {repeats}; init() without sleep)",
             startup_ms("ref"), startup_ms("ours"), 0),
            ("RSS of the server process alone, MiB (1 worker)",
             memory("ref-w1", "root_rss_mib"), memory("ours-w1", "root_rss_mib"), 1),
            ("RSS of the whole process tree, MiB (1 worker)",
             memory("ref-w1", "tree_rss_mib"), memory("ours-w1", "tree_rss_mib"), 1),
            ("PSS of the whole process tree, MiB (1 worker; informational)",
             memory("ref-w1", "tree_pss_mib"), memory("ours-w1", "tree_pss_mib"), 1),
            ("RSS of the whole process tree, MiB (2 workers)",
             memory("ref-w2", "tree_rss_mib"), memory("ours-w2", "tree_rss_mib"), 1),
        ]
        self.add("## Start-up and memory", "", "| figure | ref | ours | ours/ref |",
                 "|---|---|---|---|")
        for label, ref, ours, digits in rows:
            self.add(f"| {label} | {fmt_number(ref, digits)} | {fmt_number(ours, digits)} "
                     f"| {fmt_ratio(ours, ref)} |")
        all_starts = {server: startup[server]["all_ms"] for server in startup}
        self.add("", f"Memory is read from /proc after the hello load (warm). The reference's "
                 f"tree is the gunicorn master plus its workers; ours is the server plus its "
                 f"Python runners. Every start-up, ms: {all_starts}.", "")

    def targets_table(self):
        self.add("## Targets (issue #5)", "", "| target | measured | goal | result |",
                 "|---|---|---|---|")
        for label, measured, goal, passed in evaluate_targets(self.bench):
            result = "n/a" if passed is None else ("PASS" if passed else "MISS")
            self.add(f"| {label} | {measured} | {goal} | {result} |")
        self.add("")

    def notes(self):
        not_available = self.results["na"]
        if not not_available:
            return
        self.add("## Not measured", "")
        for key, reason in not_available.items():
            self.add(f"- `{key}`: {reason}")
        self.add("")


def evaluate_targets(bench):
    """(label, measured text, goal text, True/False/None) for each target of the issue."""
    results = bench.results
    ref64 = point(results, "hello", "ref-w1", 64)
    ours64 = point(results, "hello", "ours-w1", 64)
    ours64_w2 = point(results, "hello", "ours-w2", 64)
    ours1 = point(results, "hello", "ours-w1", 1)
    echo_ref = point(results, "echo", "ref", 4)
    echo_ours = point(results, "echo", "ours", 4)
    echo_ours_1 = point(results, "echo", "ours", 1)
    echo_loop = results["pyloop"].get("echo")
    startup = results["startup"]
    memory = results["memory"]
    targets = []

    def ratio_target(label, numerator, denominator, goal_text, check):
        if numerator is None or not denominator:
            targets.append((label, "n/a", goal_text, None))
            return
        ratio = numerator / denominator
        targets.append((label, f"{ratio:.2f}x", goal_text, check(ratio)))

    ratio_target("hello, 1 worker, 64 conns: req/s ours/ref", field(ours64, "rps"),
                 field(ref64, "rps"), ">= 10x", lambda r: r >= 10)
    ratio_target("hello, 1 worker, 64 conns: p99 ours/ref", field(ours64, "p99_ms"),
                 field(ref64, "p99_ms"), "<= 0.10x", lambda r: r <= 0.1)
    p50_us = None if ours1 is None else ours1["p50_ms"] * 1000
    targets.append(("hello, 1 worker, 1 conn: ours p50",
                    "n/a" if p50_us is None else f"{p50_us:.0f} µs", "<= 100 µs",
                    None if p50_us is None else p50_us <= 100))
    ratio_target("hello, 64 conns: ours 2 workers / ours 1 worker req/s",
                 field(ours64_w2, "rps"), field(ours64, "rps"), ">= 1.6x", lambda r: r >= 1.6)
    ratio_target("1 MB echo, 4 conns: req/s ours/ref", field(echo_ours, "rps"),
                 field(echo_ref, "rps"), ">= 1x", lambda r: r >= 1)

    overhead = None
    if echo_ours_1 and echo_loop:
        megabytes = bench.echo_body.stat().st_size / 1e6
        # Both medians: our p50 at 1 connection against the loop's median call.
        overhead = (echo_ours_1["p50_ms"] - echo_loop["median_call_us"] / 1000) / megabytes
    targets.append(("1 MB echo, 1 conn: ours p50 minus plain-Python loads+dumps, per MB",
                    "n/a" if overhead is None else f"{overhead:.2f} ms/MB", "<= 2 ms/MB",
                    None if overhead is None else overhead <= 2))

    ratio_target("start-up to first 200: ours/ref (median)",
                 (startup.get("ours") or {}).get("median_ms"),
                 (startup.get("ref") or {}).get("median_ms"), "<= 0.33x", lambda r: r <= 1 / 3)
    server_alone = (memory.get("ours-w1") or {}).get("root_rss_mib")
    targets.append(("memory: our server process alone (RSS, no runners)",
                    "n/a" if server_alone is None else f"{server_alone:.1f} MiB", "<= 20 MiB",
                    None if server_alone is None else server_alone <= 20))
    ratio_target("memory: whole tree RSS, 1 worker, ours/ref",
                 (memory.get("ours-w1") or {}).get("tree_rss_mib"),
                 (memory.get("ref-w1") or {}).get("tree_rss_mib"), "<= 0.33x",
                 lambda r: r <= 1 / 3)

    for server in SERVERS:
        if server not in bench.servers_measured:
            targets.append((f"no errors or dropped requests: {server}", "n/a", "0", None))
            continue
        entries = all_points(results, server)
        failures = sum(entry["http_errors"] + entry["socket_errors"] for entry in entries)
        targets.append((f"no errors or dropped requests: {server} ({len(entries)} runs)",
                        str(failures), "0", failures == 0 if entries else None))
    return targets


def all_points(results, server):
    entries = []
    for key, points in results["hello"].items():
        if key.startswith(server + "-"):
            entries.extend(points.values())
    entries.extend((results["echo"].get(server) or {}).values())
    return entries


# --------------------------------------------------------------------------- misc


def cpu_times():
    """The aggregate cpu line of /proc/stat: user nice system idle iowait irq softirq steal."""
    return [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]


def steal_percent(before, after):
    """Share of CPU time the hypervisor gave to someone else between two cpu_times()."""
    deltas = [late - early for early, late in zip(before, after)]
    total = sum(deltas)
    return 100.0 * deltas[7] / total if total else 0.0


def become_subreaper():
    """Orphans of our servers (a runner whose server exited first) are re-parented to
    this script instead of init, so their CPU time is counted as ours once reaped."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # not Linux or no prctl: the "other CPU" figure may then count them too


def reap_orphans():
    """Waits for every exited child not yet reaped (called once all servers are stopped)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def own_cpu_seconds():
    """CPU used by this script and every child it has waited for (servers with their
    workers and runners, wrk, the Python loop): all of them are reaped by the end."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def other_cpu_percent(before, after, own_seconds, elapsed_s):
    """CPU that processes outside this benchmark used during it, in % of one core:
    all busy time from /proc/stat minus our own. Another build running at the same
    time shows here, and skews every figure (the 2 cores share a physical core's
    resources: a busy neighbour slows a Python loop by up to 2x)."""
    deltas = [late - early for early, late in zip(before, after)]
    busy_ticks = sum(deltas) - deltas[3] - deltas[4] - deltas[7]  # minus idle, iowait, steal
    busy_s = busy_ticks / os.sysconf("SC_CLK_TCK")
    return max(0.0, 100.0 * (busy_s - own_seconds) / elapsed_s) if elapsed_s else 0.0


def load_average():
    return float(Path("/proc/loadavg").read_text().split()[0])


def python_version(python):
    finished = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True)
    return finished.stdout.strip() or "?"


def wrk_version(wrk):
    finished = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    first = (finished.stdout or finished.stderr).splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def git_commit():
    finished = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR,
                              capture_output=True, text=True)
    return finished.stdout.strip() or "none"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--duration", type=int, default=0,
                        help="seconds per point (overrides the size's)")
    parser.add_argument("--python", required=True, help="the throw-away venv's python")
    parser.add_argument("--reference", required=True, help="the reference's azmlinfsrv entry point")
    parser.add_argument("--ours", default="", help="our binary; empty: n/a with --ours-note")
    parser.add_argument("--ours-note", default="")
    parser.add_argument("--static-server", required=True)
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--out-dir", default="target/bench")
    parser.add_argument("--pid-file", required=True)
    parser.add_argument("--strict", action="store_true",
                        help="also exit 1 when any run had errors")
    return parser.parse_args(argv)


def exit_status(bench, strict):
    """1 when the harness itself is broken (the reference or a ceiling not measured) or
    when any figure of ours is missing (our server could not be built, started or
    measured: the run then shows nothing about it); with --strict also when any run had
    errors. Misses never fail."""
    missing_ours = {key: why for key, why in bench.results["na"].items() if "ours" in key}
    if missing_ours:
        for key, why in missing_ours.items():
            print(f"bench: FAILED: our server was not measured ({key}): {why}",
                  file=sys.stderr)
        return 1
    harness_keys = [key for key in bench.results["na"]
                    if "ours" not in key]
    if harness_keys:
        return 1
    if strict:
        for _label, measured, _goal, passed in evaluate_targets(bench):
            if _label.startswith("no errors") and passed is False:
                return 1
    return 0


def main(argv):
    args = parse_args(argv)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    # SIGTERM from run.sh's trap: unwind through the finally blocks that stop servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    become_subreaper()
    started = time.perf_counter()
    # Other work on the box skews every figure: record how busy it was, to show it.
    bench.load_before = load_average()
    cpu_before, own_before = cpu_times(), own_cpu_seconds()
    bench.run_all()
    reap_orphans()
    cpu_after = cpu_times()
    bench.elapsed_s = time.perf_counter() - started
    bench.steal = steal_percent(cpu_before, cpu_after)
    bench.other_cpu = other_cpu_percent(cpu_before, cpu_after, own_cpu_seconds() - own_before,
                                        bench.elapsed_s)
    bench.log(f"measured in {bench.elapsed_s:.0f} s")
    report = Report(bench).render()
    out_dir = Path(args.out_dir)
    (out_dir / "results.md").write_text(report)
    (out_dir / "results.json").write_text(json.dumps(bench.results, indent=1, default=str))
    print()
    print(report)
    print(f"Written to {out_dir / 'results.md'} (raw figures: {out_dir / 'results.json'}).")
    return exit_status(bench, args.strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
