"""How riverflink starts the JVM of local jobs: a class-data archive and lean flags.

Each ``riverflink run`` starts a JVM that loads and verifies some 20,000 classes of
Flink, its SQL planner and Beam before the first line moves. Java's class-data
sharing (CDS) can map them from an archive instead. ``riverflink warm-up`` (which
``make setup`` runs) writes that archive once, from a small job, into this Python
environment (``share/riverflink/``, about 100 MB); every local run then starts
with it, seconds sooner (docs/performance.md).

The archive belongs to one Java build and one Flink class path (the file name
carries PyFlink's version). A JVM that cannot use it, after an upgrade of either,
ignores it silently and starts the slow way; ``riverflink warm-up`` writes a new one.

The local JVM also runs with :data:`LEAN_FLAGS` (see :func:`use_lean_flags`).

Switches: ``RIVERFLINK_CLASS_ARCHIVE=0`` (the archive), ``RIVERFLINK_LEAN_JVM=0`` (the
flags), or ``RIVERFLINK_ACCELERATE=0`` (both, and every other accelerator).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from riverflink.accel import enabled

__all__ = [
    "LEAN_FLAGS",
    "archive_path",
    "build_archive",
    "use_archive",
    "use_lean_flags",
]

#: JVM flags that read the archive. The JVM's own messages about it are off: they would
#: go to stdout, where ``--output -`` writes the job's JSON lines.
_QUIET = ("-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+dynamic=off")

#: Runs load riverflink's agent (:func:`use_loopback_agent`), the warm-up's run too. Java
#: writes an archive while an agent runs only if allowed, and then reads it only in JVMs
#: that allow it as well. The agent changes one class after start and transforms none as
#: they load, and a redefined class is left out of the archive: the archive is the one
#: the run would write without the agent.
_WITH_AGENT = ("-XX:+UnlockDiagnosticVMOptions", "-XX:+AllowArchivingWithJavaAgent")


def archive_path() -> Path:
    from pyflink.version import __version__ as pyflink_version

    from riverflink.config.paths import build_dir

    return build_dir() / f"flink-{pyflink_version}-classes.jsa"


def use_archive() -> bool:
    """Make the JVM PyFlink starts next read the archive, if there is one (and the
    accelerator is on). A JVM that cannot map it starts the usual way."""
    if not enabled("class_archive"):
        return False
    path = archive_path()
    if not path.is_file():
        return False
    flag = f"-XX:SharedArchiveFile={path}"
    args = os.environ.get("JVM_ARGS", "").split()
    if any(arg.startswith("-XX:ArchiveClassesAtExit") for arg in args):
        return False  # this JVM writes the archive (warm-up)
    if flag not in args:
        os.environ["JVM_ARGS"] = " ".join([*args, flag, *_WITH_AGENT, *_QUIET])
    return True


#: JVM flags for local runs. The local JVM shares the machine's cores with the Python
#: workers that do the learning, and by default it spends them on itself: its
#: optimizing JIT compiler (C2) takes a core for most of a run's first seconds while the
#: Python worker waits for one. The Java side of a riverflink job is light (read lines,
#: route, batch, hand to Python), so the quick C1 compiler serves it well, and the
#: serial collector adds no GC threads. Either flag is left out when ``JVM_ARGS``
#: already chooses a compiler or collector.
LEAN_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def _chooses(args: list, flag: str) -> bool:
    """Whether the user's JVM args already settle what ``flag`` settles."""
    if "Tiered" in flag:
        return any("Tiered" in arg for arg in args)
    return any(arg.startswith("-XX:+Use") and arg.endswith("GC") for arg in args)


def use_lean_flags() -> list:
    """Add :data:`LEAN_FLAGS` to the JVM PyFlink starts next; the flags added."""
    if not enabled("lean_jvm"):
        return []
    args = os.environ.get("JVM_ARGS", "").split()
    added = [flag for flag in LEAN_FLAGS if not _chooses(args, flag)]
    if added:
        os.environ["JVM_ARGS"] = " ".join([*args, *added])
    return added


def _sample(path: Path, n: int = 2000) -> None:
    """Records like a user's: a few keys, numbers and a boolean label, one bad line."""
    rng = random.Random(1)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            x = {f"x{j}": round(rng.gauss(0, 1), 4) for j in range(3)}
            fh.write(json.dumps({"key": f"k{i % 8}", "id": i, **x, "y": x["x0"] > 0}) + "\n")
        fh.write("not json\n")


def build_archive(timeout: float = 600) -> tuple[Path, float]:
    """Run a small job whose JVM writes the archive at exit; (path, seconds taken).

    The job reads a file with checkpoints on, so the classes of sources, SQL routing,
    the Python operator, state, checkpoints and file sinks are all in the archive.
    """
    path = archive_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="riverflink-warm-up-") as work:
        work = Path(work)
        _sample(work / "in.jsonl")
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        flags = " ".join([*_WITH_AGENT, f"-XX:ArchiveClassesAtExit={partial}", "-Xlog:cds=off"])
        env = dict(os.environ, JVM_ARGS=flags)
        env.pop("PYFLINK_GATEWAY_PORT", None)
        command = [
            sys.executable,
            "-m",
            "riverflink.cli",
            "run",
            "--source",
            str(work / "in.jsonl"),
            "--output",
            str(work / "out"),
            "--checkpoint-dir",
            str(work / "checkpoints"),
            "--checkpoint-interval",
            "1",
            "--quiet",
        ]
        from riverflink.config.paths import code_root

        root = code_root()
        if root is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            raise RuntimeError(
                f"the warm-up job failed (exit code {done.returncode}): {done.stderr.strip()}"
            )
        os.replace(partial, path)  # whole or not at all, also with runs starting meanwhile
    return path, time.monotonic() - started
