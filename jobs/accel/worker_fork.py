"""Python workers forked from a warm process, for local runs.

Each subtask's Python worker is a process that Flink starts when the job's tasks open.
Started cold, it spends about 2 s before its first record: the interpreter, Beam and
gRPC (about 1 s), then River and riverflink's operators when it unpickles the learning
function (about 1 s, pandas and scipy included). On a local run that is 2 s of every
run's wall time, and both workers of a parallelism-2 run pay it at the same moment.

So ``riverflink run`` starts one *zygote* beside the JVM, at the very start of the run:
a Python process that imports all of that while the JVM and the mini-cluster start, then
waits. Flink's worker command (``python.executable``) is a tiny launcher script. It
hands its arguments, environment, working directory and standard streams to the zygote
over a Unix socket; the zygote forks, and the child becomes the worker with the
launcher's streams, environment and working directory, exactly as if the launcher had
run it, minus the imports. The launcher waits for the worker and exits with its status.
Before each worker, Flink would also start a cold interpreter to ask where PyFlink's
runner script is; the zygote puts the answer in the JVM's environment
(``PYFLINK_UDF_RUNNER_DIR``, which Flink reads first).

The zygote also spares the client River (about 1 s of imports, on the path to the job's
start): building the specs is its first step, and it sends the verdict (the model's kind,
or the spec's error) back on a pipe; at the end of the run it computes the summary of the
output, which needs River's metrics (for a run that ends by itself a fork of it reads the
output's part files as they are committed, see :meth:`Zygote.watch`). Where it cannot
answer, the client does both itself.

Where the zygote is gone or cannot be reached, the launcher runs the worker the usual
way (``exec`` of the real interpreter), so a worker always starts. ``RIVERFLINK_FORK=0``
(or ``RIVERFLINK_ACCELERATE=0``) turns forking off. Only local runs use it: under
``flink run`` the cluster starts its own workers.

The socket lives in a private temporary directory (mode 0700) of the user running the
job, and the zygote exits when the ``riverflink run`` process that started it ends.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from riverflink.accel import enabled, turn_off

__all__ = ["Zygote", "main"]

#: The environment variable that tells the launcher where the zygote listens.
SOCKET_ENV = "RIVERFLINK_ZYGOTE"

#: What Flink's runner script asks the worker command to run.
WORKER_MODULE = "pyflink.fn_execution.beam.beam_boot"

#: Where Flink finds PyFlink's runner script when this is in its environment. Without
#: it, Flink asks a cold interpreter (``python.executable -c "import pyflink; ..."``)
#: before each worker starts: a fifth of a second, on the way to the first record.
RUNNER_DIR_ENV = "PYFLINK_UDF_RUNNER_DIR"

#: The launcher: stdlib only, started isolated and without site (-IS): it starts in
#: milliseconds. Anything but a worker start (or no zygote) runs the real interpreter.
LAUNCHER = """\
#!{python} -IS
# riverflink: Flink's Python worker command. See jobs/accel/worker_fork.py.
import json, os, signal, socket, sys

def run_here():
    os.execv({python!r}, [{python!r}, *sys.argv[1:]])

path = os.environ.get({env!r})
if not path or sys.argv[1:3] != ["-m", {module!r}]:
    run_here()
try:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    request = json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}})
    socket.send_fds(conn, [request.encode() + b"\\n"], [0, 1, 2])
    reply = conn.makefile("rb")
    pid = int(reply.readline())
except (OSError, ValueError):
    run_here()
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(signum, lambda signum, frame: os.kill(pid, signum))
line = reply.readline()
sys.exit(int(line) if line.strip() else 1)
"""


class Zygote:
    """The warm process of a local run (see the module's docstring)."""

    def __init__(self, process: subprocess.Popen, directory: Path):
        self.process = process
        self.directory = directory
        self._verdict = None  # the pipe of the zygote's verdict on the specs
        self._watch = None  # (directory, connection) of the summary read during the run

    @property
    def launcher(self) -> str:
        return str(self.directory / "python")

    @property
    def socket_path(self) -> str:
        return str(self.directory / "zygote.sock")

    def close(self) -> None:
        """End the zygote (workers forked from it run on) and remove its directory."""
        if self._watch is not None and self._watch[1] is not None:
            self._watch[1].close()
        self._watch = None
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self._verdict is not None:
            self._verdict.close()
            self._verdict = None
        shutil.rmtree(self.directory, ignore_errors=True)

    @classmethod
    def start(cls, preload: dict, *, module: str = WORKER_MODULE) -> Zygote | None:
        """Start a zygote that imports what ``preload`` (OnlineLearner's specs) needs.

        Its launcher forks ``python -m module ...`` (Flink's worker); anything else runs
        cold. Returns None where forking is off or not available: workers then start cold.
        """
        if not enabled("fork") or not hasattr(socket, "send_fds"):
            return None
        try:
            return cls._start(preload, module)
        except Exception as exc:  # noqa: BLE001 - an accelerator never fails a run
            turn_off("fork", exc)
            return None

    @classmethod
    def _start(cls, preload: dict, module: str) -> Zygote:
        directory = Path(tempfile.mkdtemp(prefix="riverflink-workers-"))  # mode 0700
        zygote = cls(None, directory)
        launcher = Path(zygote.launcher)
        launcher.write_text(LAUNCHER.format(python=sys.executable, env=SOCKET_ENV, module=module))
        launcher.chmod(0o700)
        verdict, verdict_w = os.pipe()
        zygote.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "riverflink.accel.worker_fork",
                zygote.socket_path,
                json.dumps(preload),
                str(verdict_w),
            ],
            stdin=subprocess.PIPE,  # closed when riverflink run ends: the zygote then exits
            close_fds=True,
            pass_fds=(verdict_w,),
        )
        os.close(verdict_w)
        zygote._verdict = os.fdopen(verdict, "rb")
        os.environ[SOCKET_ENV] = zygote.socket_path  # inherited by the JVM, then the workers
        runner_dir = _runner_dir()
        if runner_dir is not None:
            os.environ.setdefault(RUNNER_DIR_ENV, runner_dir)  # the JVM's, as above
        return zygote

    def model_kind(self, timeout: float = 120.0) -> str | None:
        """The model's kind ("classifier", "regressor", ...), as the zygote found it when it
        built the specs, its first step. Raises ``ValueError`` with the learner's message
        for a bad spec. None if the zygote could not tell: the caller checks for itself.
        """
        if self._verdict is None:
            return None
        ready, _, _ = select.select([self._verdict], [], [], timeout)
        line = self._verdict.readline() if ready else b""
        self._verdict.close()
        self._verdict = None
        if self._watch is not None and line:
            self._start_watch()  # it listens (it bound its socket before the verdict)
        try:
            verdict = json.loads(line)
        except ValueError:
            return None  # the zygote is gone, or took too long
        if "error" in verdict:
            raise ValueError(verdict["error"])
        return verdict.get("kind")

    def watch(self, directory: str) -> None:
        """Have the zygote read ``directory``'s output as it is committed, for the summary.

        A subtask's part files are committed when it finishes, so at parallelism 2 the
        summary reads the first half of the output while the slower subtask still works
        (on the core the faster one left idle), and only the rest once the job has ended.
        For jobs that end by themselves: the output read is held until the summary.
        """
        self._watch = (directory, None)
        if Path(self.socket_path).exists():
            self._start_watch()
        # else the zygote is starting: it listens once it has sent its verdict on the specs

    def _start_watch(self) -> None:
        directory, conn = self._watch
        if conn is not None:
            return
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.socket_path)
            request = {"summary": {"directory": directory}, "watch": True}
            conn.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            conn.close()
            self._watch = None  # the summary is then read at the end
            return
        self._watch = (directory, conn)

    def summary(self, directory: str, **options) -> str | None:
        """``riverflink.results.summary.job_summary(directory, **options)``, computed by the
        zygote, which has River imported already (and has read ``directory`` since
        :meth:`watch`, if it was asked to). Raises ``OSError`` where it cannot answer."""
        watch, self._watch = self._watch, None
        if watch is not None and watch[1] is not None:
            with watch[1] as conn:
                if watch[0] == directory:
                    try:
                        return _answer(conn, {"directory": directory, **options})
                    except OSError:
                        pass  # ask again, without what it read
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self.socket_path)
            return _answer(conn, {"summary": {"directory": directory, **options}})


def _runner_dir() -> str | None:
    """The directory of PyFlink's runner script, as Flink would find it; None if it is
    not there (Flink then looks for itself)."""
    import importlib.util

    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        return None
    directory = Path(os.path.abspath(spec.origin)).parent / "bin"
    return str(directory) if (directory / "pyflink-udf-runner.sh").is_file() else None


def _answer(conn: socket.socket, request: dict) -> str | None:
    """Send ``request`` (one JSON line) and read the summary the zygote answers."""
    conn.sendall(json.dumps(request).encode() + b"\n")
    reply = conn.makefile("rb").readline()
    try:
        return json.loads(reply)["text"]
    except (ValueError, KeyError) as exc:
        raise OSError("the zygote gave no summary") from exc


def _preload(specs: dict, verdict_fd: int | None = None) -> None:
    """Import what a worker of this job imports before its first record.

    River and the specs come first: building them is the check of the specs, whose
    verdict (one JSON line) goes to ``verdict_fd`` for the client, which then needs no
    River of its own. Beam follows.
    """
    verdict: dict = {}
    try:
        from riverflink.operators.learner import OnlineLearner

        verdict["kind"] = OnlineLearner(**specs).kind  # River's modules of the specs
    except ValueError as exc:  # a bad spec: the client reports it
        verdict["error"] = str(exc)
    except Exception:  # noqa: BLE001 - the client checks for itself and reports it
        pass
    if verdict_fd is not None:
        try:
            with os.fdopen(verdict_fd, "wb") as out:
                out.write(json.dumps(verdict).encode() + b"\n")
        except BrokenPipeError:
            pass  # the client stopped listening (its run already failed): nothing to tell
    import pyflink.fn_execution.beam.beam_boot  # noqa: F401 - gRPC, Beam's protos
    import pyflink.fn_execution.beam.beam_operations  # noqa: F401 - Beam's worker, coders
    import pyflink.fn_execution.beam.beam_sdk_worker_main  # noqa: F401
    import pyflink.fn_execution.datastream.process.operations  # noqa: F401

    import riverflink.operators.functions  # noqa: F401
    from riverflink.accel.sampler import shorten_sampling

    shorten_sampling()  # before any worker creates its bundle processor


def _serve(listener: socket.socket, parent) -> None:
    """Fork a worker for each launcher that connects, until ``parent`` (stdin) closes."""
    children = set()
    while True:
        ready, _, _ = select.select([listener, parent], [], [], 1.0)
        while children:  # reap finished supervisors
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
        if parent in ready and not os.read(parent.fileno(), 4096):
            return
        if listener in ready:
            conn, _ = listener.accept()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                _supervise(conn)  # never returns
            conn.close()
            children.add(pid)


def _supervise(conn: socket.socket) -> None:
    """In a fork: fork the worker, tell the launcher its pid, then its exit status."""
    code = 1
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        while b"\n" not in message:
            chunk = conn.recv(1 << 20)
            if not chunk:
                raise OSError("launcher went away")
            message += chunk
        message, rest = message.split(b"\n", 1)
        request = json.loads(message)
        if "summary" in request:
            # This fork ends with the answer: no cycle collection at all (re-enabled after
            # reading, the collector's first pass walked every row read: 0.1 s).
            gc.disable()
            options, reader = request["summary"], None
            if request.get("watch"):
                from riverflink.results.outputs import OutputReader

                reader = OutputReader(options["directory"])
                options = _read_until_asked(conn, reader, rest)
            conn.sendall(json.dumps({"text": _summary(options, reader)}).encode() + b"\n")
            return
        pid = os.fork()
        if pid == 0:
            conn.close()
            _become_worker(request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        conn.sendall(f"{code if code >= 0 else 128 - code}\n".encode())
    except BaseException:  # noqa: BLE001 - the launcher sees the connection close
        pass
    finally:
        os._exit(0)


#: Seconds between two looks for newly committed output while the job runs.
WATCH_INTERVAL = 0.1


def _read_until_asked(conn: socket.socket, reader, pending: bytes) -> dict:
    """Read newly committed output until the client asks for the summary; its options."""
    while b"\n" not in pending:
        ready, _, _ = select.select([conn], [], [], WATCH_INTERVAL)
        if not ready:
            reader.read_new()
            continue
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise OSError("riverflink run went away")
        pending += chunk
    return json.loads(pending.split(b"\n", 1)[0])


def _summary(options: dict, reader=None) -> str | None:
    """The end-of-run summary (None: no committed output), computed here for the client;
    ``reader``: a :class:`riverflink.results.outputs.OutputReader` of the output, if one has
    read it."""
    from riverflink.results.summary import job_summary

    try:
        return job_summary(**options, reader=reader)
    except FileNotFoundError:
        return None


def _become_worker(request: dict, fds: list) -> None:
    """In the worker's fork: take the launcher's streams, environment and place; run."""
    code = 0
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        paths = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:0] = [os.path.abspath(p) for p in paths if os.path.abspath(p) not in sys.path]
        argv = request["argv"]
        if len(argv) < 2 or argv[0] != "-m":
            raise SystemExit(f"riverflink worker launcher: expected -m MODULE, got {argv}")
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - as an uncaught exception would end a process
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list | None = None) -> int:
    """``python -m riverflink.accel.worker_fork SOCKET SPECS_JSON [VERDICT_FD]``: the zygote."""
    path, specs, *verdict = argv if argv is not None else sys.argv[1:]
    # Ctrl-C reaches the whole process group; the client handles it and closes stdin,
    # which ends the zygote. (Each worker restores the default handler.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)  # first, so that a launcher that comes early waits, not falls back
    except FileNotFoundError:  # the run ended (refused, say) before this process started
        return 0
    listener.listen(64)
    _preload(json.loads(specs), int(verdict[0]) if verdict else None)
    # What the workers inherit stays out of their cycle collector: its first full
    # collection in each worker walked every imported object, writing to each one's
    # header, so every page of them was copied (about 0.1 s per worker).
    gc.freeze()
    try:
        _serve(listener, sys.stdin)
    finally:
        listener.close()
        shutil.rmtree(Path(path).parent, ignore_errors=True)  # the socket and the launcher
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # At once: Python's own teardown of Beam, River and pandas takes about 0.4 s, and the
    # run's stderr stays open until this process ends (a pipe reading it waits).
    os._exit(code)
