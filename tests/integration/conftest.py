"""Helpers for integration tests: run the real CLI (real mini-cluster), read its output,
compare it with plain River (``tests/reference.py``); the ``accelerate`` fixture runs a
test's jobs with riverflink's accelerators on or off, and checks which they were."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def job_env(env: dict | None = None) -> dict:
    """The environment of a run: this one, riverflink's code on the path, and ``env``."""
    return dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))


#: The session watch (see :class:`_Watch`) of every job these helpers started, in order.
_STARTED: list = []


def start_job(
    *args: str,
    module: str = "riverflink.online_learning",
    python: str = sys.executable,
    cwd: Path = REPO,
    env: dict | None = None,
    **popen,
) -> subprocess.Popen:
    """``python -m module ARGS`` started in a session of its own (its JVM and workers
    join it: :func:`stop_job` ends them all), its output on pipes, as text, unless
    ``popen`` says otherwise; watched (see :func:`accelerate`)."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    proc = subprocess.Popen(
        [python, "-m", module, *args],
        cwd=cwd,
        env=job_env(env),
        start_new_session=True,
        **popen,
    )
    watch = _Watch(proc)
    watch.start()
    _STARTED.append(watch)
    return proc


def stop_job(proc: subprocess.Popen) -> None:
    """Kill the job's whole session (kill -9), whatever is left of it, and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def running(*args: str, **options):
    """:func:`start_job` for the ``with`` block; killed (:func:`stop_job`) when it ends."""
    proc = start_job(*args, **options)
    try:
        yield proc
    finally:
        stop_job(proc)


def run_cli(
    *args: str,
    timeout: float = 240,
    cwd: Path = REPO,
    env: dict | None = None,
    module: str = "riverflink.online_learning",
) -> subprocess.CompletedProcess:
    """``python -m riverflink.online_learning ARGS`` as a user would run it (or ``module``).

    Each run logs Flink to its own directory. A run that outlives ``timeout`` fails the
    test with what it was doing: the JVM's thread dump (``kill -3``) and the log's tail.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="riverflink-flink-log-"))
    proc = start_job(
        *args, module=module, cwd=cwd, env={"FLINK_LOG_DIR": str(log_dir), **(env or {})}
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(_hang_report(proc, timeout, log_dir), pytrace=False)
    shutil.rmtree(log_dir, ignore_errors=True)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def run_ok(*args: str, **options) -> subprocess.CompletedProcess:
    """:func:`run_cli`, which must succeed."""
    result = run_cli(*args, **options)
    assert result.returncode == 0, result.stderr
    return result


@dataclass
class Finished:
    """A run that succeeded: what it printed, and what it committed to its output."""

    stdout: str
    stderr: str
    out: dict  # kind ("predictions", "alerts", "outcomes", "rejected") -> rows

    @property
    def last_line(self) -> str:
        """Its last line on stdout: with --savepoint-on-exit, the savepoint's path."""
        return self.stdout.strip().splitlines()[-1]


def run_job(source: Path, output: Path, *args: str, **options) -> Finished:
    """Run riverflink on ``source`` with ``--output output`` and ``ARGS``; it must succeed."""
    result = run_ok("--source", str(source), "--output", str(output), *args, **options)
    return Finished(result.stdout, result.stderr, read_output(output))


def stdout_rows(stdout: str) -> list:
    """The rows a run printed (``--output -``): every line is one."""
    return [json.loads(line) for line in stdout.splitlines()]


def stdout_output(stdout: str) -> dict:
    """The rows a run printed (``--output -``) by kind, as :func:`read_output` reads them
    from an output directory (without their ``kind``)."""
    out: dict = {"predictions": [], "alerts": [], "outcomes": [], "rejected": []}
    names = {"prediction": "predictions", "alert": "alerts", "outcome": "outcomes"}
    for row in stdout_rows(stdout):
        kind = row.pop("kind")
        out[names.get(kind, kind)].append(row)
    return out


def wait_until(condition, proc: subprocess.Popen, *, timeout: float = 120, interval=0.5):
    """``condition()``'s first true value, polled while ``proc`` runs (the test fails if it
    ends first); after ``timeout`` seconds, its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr and not proc.stderr.closed else ""
            pytest.fail(f"the job ended (exit {proc.returncode}): {err[-3000:]}", pytrace=False)
        time.sleep(interval)


def wait_for_rows(directory: Path, count: int, proc: subprocess.Popen, timeout=120) -> list:
    """The rows committed under ``directory`` once there are ``count``, while ``proc`` runs."""

    def enough():
        rows = read_lines(directory)
        return rows if len(rows) >= count else None

    rows = wait_until(enough, proc, timeout=timeout)
    if not rows:
        raise AssertionError(f"fewer than {count} rows committed after {timeout} s")
    return rows


def line_server() -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (a free port) whose accept waits 2 minutes."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(120)
    return server


class SocketFeed:
    """A job reading ``socket://`` from a server this test runs, printing to stdout.

    In a ``with`` block, the job has connected: :meth:`send` records, :meth:`read_until`
    its rows as it answers, :meth:`finish` (the input ends); killed when the block ends.
    """

    def __init__(self, *args: str, stderr=subprocess.DEVNULL, env: dict | None = None):
        self.server = line_server()
        source = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.proc = start_job("--output", "-", *args, "--source", source, stderr=stderr, env=env)
        self.conn = None
        self.rows: list = []
        self.stderr = ""

    def __enter__(self) -> SocketFeed:
        try:
            self.conn, _ = self.server.accept()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()
        stop_job(self.proc)

    def send(self, records: list) -> None:
        self.conn.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in records))

    def read_until(self, done) -> list:
        """The rows printed so far, read until ``done(rows)``."""
        while not done(self.rows):
            line = self.proc.stdout.readline()
            assert line, "the job ended early"
            self.rows.append(json.loads(line))
        return self.rows

    def finish(self, timeout: float = 120) -> list:
        """Close the connection: the input ends. Every row, once the job has ended well."""
        self.conn.close()
        self.conn = None
        rest, err = self.proc.communicate(timeout=timeout)
        self.rows.extend(stdout_rows(rest))
        self.stderr = err or ""
        assert self.proc.returncode == 0, self.stderr[-3000:]
        return self.rows


class _Watch(threading.Thread):
    """Which accelerators a job's processes show, read from ``/proc`` while it runs.

    ``fork``: the warm worker fork (a zygote process, or a process given its socket in
    ``RIVERFLINK_ZYGOTE``, as the JVM and the workers' launcher are);
    ``class_archive``: a JVM started with riverflink's class-data archive.
    """

    def __init__(self, proc: subprocess.Popen):
        super().__init__(daemon=True)
        self.proc = proc
        self.seen: set = set()

    def run(self) -> None:
        from riverflink.accel.worker_fork import SOCKET_ENV, Zygote

        zygote, socket_env = Zygote.__module__.encode(), SOCKET_ENV.encode() + b"="
        looked = set()
        while True:
            ended = self.proc.poll() is not None
            for pid in session_pids(self.proc.pid):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if (pid, tuple(argv)) in looked:
                    continue
                looked.add((pid, tuple(argv)))
                if zygote in argv or any(v.startswith(socket_env) for v in environ):
                    self.seen.add("fork")
                if any(a.startswith(b"-XX:SharedArchiveFile=") for a in argv):
                    self.seen.add("class_archive")
            if ended:
                return
            time.sleep(0.2)


@pytest.fixture
def accelerate(request, monkeypatch):
    """``"on"`` (the default) or ``"off"``: the jobs this test starts run with riverflink's
    accelerators, or with ``RIVERFLINK_ACCELERATE=0`` (every one off). Parametrize it
    indirectly: ``@pytest.mark.parametrize("accelerate", ["on", "off"], indirect=True)``.

    After the test, what the jobs' processes showed must agree: with "off", no run forked
    its workers or mapped the class archive; with "on", some run forked its workers (so
    the watch does see an accelerator where there is one).
    """
    mode = getattr(request, "param", "on")
    assert mode in ("on", "off"), mode
    if mode == "off":
        monkeypatch.setenv("RIVERFLINK_ACCELERATE", "0")
    else:
        monkeypatch.delenv("RIVERFLINK_ACCELERATE", raising=False)
    first = len(_STARTED)
    yield mode
    watches = _STARTED[first:]
    assert watches, "the test started no job"
    for watch in watches:
        watch.join(timeout=30)
    seen = set().union(*(watch.seen for watch in watches))
    if mode == "off":
        assert seen == set(), f"RIVERFLINK_ACCELERATE=0, yet a run used: {sorted(seen)}"
    else:
        assert "fork" in seen, "no run forked its workers from a warm process"


def session_pids(session: int) -> list:
    """The processes of the session ``session`` (a run started in a new session)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat: the session id
            pids.append(int(stat.parent.name))
    return pids


def listening_addresses(pids) -> list:
    """The addresses that ``pids`` listen on for TCP connections (Linux ``/proc``)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                addresses.append(_ip_port(fields[1]))
    return addresses


def _ip_port(hex_address: str) -> str:
    """``0100007F:1F90`` (as /proc/net/tcp writes it) -> ``127.0.0.1:8080``."""
    import ipaddress

    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # each 32-bit word in host order (little-endian on the machines this runs on)
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"{ip}:{int(port, 16)}"


def on_loopback(address: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(address.rsplit(":", 1)[0]).is_loopback


def _hang_report(proc: subprocess.Popen, timeout: float, log_dir: Path) -> str:
    """Thread dumps of the run's JVMs, then the run killed; what it printed and logged."""
    for pid in session_pids(proc.pid):
        try:
            if Path(f"/proc/{pid}/exe").resolve().name == "java":
                os.kill(pid, signal.SIGQUIT)  # the JVM prints its threads to its stdout
        except OSError:
            pass
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate()
    logs = "".join(
        path.read_text(errors="replace")[-12_000:] for path in sorted(log_dir.glob("*.log"))
    )
    threads = [
        block
        for block in stdout.split("\n\n")
        if any(word in block for word in ("learn per key", "Aggregate", "Source:", "Python"))
    ]
    return "\n".join(
        [
            f"the job ran for over {timeout:.0f} s: {' '.join(proc.args)}",
            "--- stderr",
            stderr[-3000:],
            "--- Flink log (tail)",
            logs[-8000:],
            "--- JVM threads of the operators",
            "\n\n".join(threads)[-12_000:],
        ]
    )


def read_lines(directory: Path) -> list:
    """Committed JSON lines under ``directory`` (in-progress files start with a dot)."""
    out = []
    for part in sorted(Path(directory).glob("part*")):
        with open(part, encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out


def part_writers(directory: Path) -> set:
    """Who wrote the committed part files under ``directory``: each subtask of Flink's file
    sink names its files ``part-<its own UUID>-<counter>.jsonl``."""
    return {part.name.rsplit("-", 1)[0] for part in Path(directory).glob("part-*")}


def read_output(directory: Path) -> dict:
    return {
        name: read_lines(Path(directory) / name)
        for name in ("predictions", "alerts", "outcomes", "rejected")
    }


def by_key(rows: list) -> list:
    """Order rows per key by n: the job guarantees order per key, not across keys."""
    return sorted(rows, key=lambda r: (json.dumps(r["key"]), r["n"]))


def jsonable(rows: list) -> list:
    """What the reference rows look like after a trip through JSON, as the job's do."""
    return [json.loads(json.dumps(r)) for r in rows]


def drifting_stream(
    n: int = 3000, keys=("a", "b", "c", "d"), *, seed: int = 3, drift_key="a", regression=False
) -> list:
    """Records whose concept flips (or shifts) halfway for ``drift_key``."""
    rng = random.Random(seed)
    weights = {k: [rng.uniform(-2, 2) for _ in range(3)] for k in keys}
    records = []
    for i in range(n):
        key = keys[i % len(keys)]
        x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
        score = sum(w * v for w, v in zip(weights[key], x.values()))
        if regression:
            y = score + rng.gauss(0, 0.1) + (25.0 if key == drift_key and i > n // 2 else 0.0)
        else:
            y = score + rng.gauss(0, 0.3) > 0
            if key == drift_key and i > n // 2:
                y = not y
        records.append({"key": key, "id": i, **x, "y": y})
    return records


def write_jsonl(path: Path, records: list, extra_lines=()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")
    return path


def flink_conf(directory: Path, changes: dict) -> dict:
    """riverflink's Flink configuration copied to ``directory``, with each setting in
    ``changes`` (a line it must have) written as its value: the environment of a run
    that reads it."""
    shutil.copytree(REPO / "flink-conf", directory)
    config = directory / "config.yaml"
    text = config.read_text()
    for old, new in changes.items():
        assert old in text, f"flink-conf/config.yaml has no {old!r}"
        text = text.replace(old, new)
    config.write_text(text)
    return {"FLINK_CONF_DIR": str(directory)}


def default_model():
    """riverflink's default --model, built by hand."""
    from river import linear_model, preprocessing

    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def river_rows(records: list, make_model=default_model, **options) -> dict:
    """Plain River's output for ``records`` (:func:`tests.reference.reference_run`), each
    kind's rows in input order, as they read after a trip through JSON, as the job's do.

    ``options`` go to ``reference_run``; the drift detector is riverflink's default
    (``drift.ADWIN()``) unless they name one (``make_detector=None``: none).
    """
    from river import drift

    from tests.reference import reference_run

    options = {"make_detector": drift.ADWIN, "detector_spec": "drift.ADWIN()", **options}
    return {
        kind: jsonable(rows) for kind, rows in reference_run(records, make_model, **options).items()
    }


def assert_like_river(
    out: dict,
    records: list,
    make_model=default_model,
    *,
    kinds=("predictions", "alerts"),
    **options,
) -> dict:
    """Per key, the job's rows of each of ``kinds`` are plain River's (see :func:`river_rows`,
    which gets ``options``); returns River's rows."""
    want = river_rows(records, make_model, **options)
    for kind in kinds:
        assert by_key(out[kind]) == by_key(want[kind]), f"{kind}: not as in plain River"
    return want
