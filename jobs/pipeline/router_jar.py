"""riverflink's router, a small Flink operator in Java (``operators/java/``).

Every input line needs its routing bucket before it can reach its key's model, and
that is work for Java, where the lines already are: crossing into Python only to
read the key would cost a second Python operator. The router reads the key field
(a plain string at the start of the line without parsing, anything else with
Jackson), hashes it into a bucket and gathers the lines of each bucket, so that
many cross into Python at once (``--profile throughput``). It keeps no state: it
sends everything it holds on before each checkpoint barrier.

Its source is compiled once per version, by ``riverflink warm-up`` (``make setup``)
or on the first run, into this Python environment (``share/riverflink/``), with the
JDK's ``javac`` against PyFlink's own jars. Without a JDK the job routes in Flink
SQL instead (``JSON_VALUE`` and a tumbling window): the same buckets, so the same
models, but each run starts about 2 s later and the JVM works harder per line.
``RIVERFLINK_ROUTER=sql`` chooses that route on purpose.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

__all__ = ["CLASS_NAME", "SOCKET_CLASS_NAME", "build_jar", "jar_path", "router_jar"]

#: The operator's Java class.
CLASS_NAME = "riverflink.RouteLines"
#: riverflink's socket source, in the same jar.
SOCKET_CLASS_NAME = "riverflink.SocketLines"


#: The jar is also the local JVM's agent (``jobs/accel/java/riverflink/LoopbackAgent.java``).
MANIFEST = (
    "Manifest-Version: 1.0\r\n"
    "Premain-Class: riverflink.LoopbackAgent\r\n"
    "Can-Redefine-Classes: true\r\n\r\n"
)


def _sources() -> list:
    """riverflink's Java classes, built into one jar: the router (``operators/java/``);
    the early mini-cluster (:mod:`riverflink.accel.early_cluster`), the socket source and the local
    JVM's agent (:mod:`riverflink.accel.jvm_archive`), each in a ``java/`` folder beside its
    Python module."""
    from riverflink.config.paths import package_dirs

    dirs = package_dirs()
    root = dirs["riverflink"]
    folders = (dirs["riverflink.operators"], root / "pipeline", root / "accel")
    sources = [p for folder in folders for p in (folder / "java").rglob("*.java")]
    return sorted(sources, key=lambda p: p.name)  # the same order in every layout


def _pyflink_jars() -> list:
    import pyflink

    lib = Path(pyflink.__file__).resolve().parent / "lib"
    return sorted(lib.glob("flink-dist*.jar"))


def jar_path() -> Path:
    """Where the jar of the current sources is (or would be) built."""
    from pyflink.version import __version__ as pyflink_version

    digest = hashlib.sha256(pyflink_version.encode() + MANIFEST.encode())
    for source in _sources():
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    name = f"riverflink-router-{digest.hexdigest()[:12]}.jar"
    from riverflink.config.paths import build_dir

    return build_dir() / name


def build_jar(path: Path | None = None) -> Path:
    """Compile the router into ``path`` (default :func:`jar_path`); raises if it cannot.

    Needs ``javac`` (Debian: ``openjdk-17-jdk-headless``); compiles for Java 11, the
    oldest Java that Flink 2 runs on, so the jar also works on a cluster's JVM.
    """
    path = path or jar_path()
    javac = shutil.which("javac")
    if javac is None:
        raise RuntimeError(
            "no javac on PATH: install a JDK (Debian: apt-get install openjdk-17-jdk-headless)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="riverflink-javac-") as work:
        classes = Path(work) / "classes"
        command = [
            javac,
            "--release",
            "11",
            "-nowarn",
            "-encoding",
            "UTF-8",
            "-d",
            str(classes),
            "-cp",
            os.pathsep.join(str(jar) for jar in _pyflink_jars()),
            *(str(source) for source in _sources()),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"javac failed: {done.stderr.strip()}")
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", MANIFEST)
            for item in sorted(classes.rglob("*.class")):
                jar.write(item, item.relative_to(classes).as_posix())
        os.replace(partial, path)  # whole or not at all, also with runs starting meanwhile
    _remove_old_builds(path.parent)
    return path


#: Builds kept in ``share/riverflink/`` (checkouts of other versions may share it).
KEPT_BUILDS = 4


def _remove_old_builds(directory: Path) -> None:
    """Remove all but the newest :data:`KEPT_BUILDS` builds: each jar and its copy of
    Flink's RPC system (24 MB)."""
    builds = [f for f in directory.glob("riverflink-router-*.jar") if f.stem[-4:] != "-rpc"]
    builds.sort(key=lambda f: f.stat().st_mtime, reverse=True)
    for old in builds[KEPT_BUILDS:]:
        old.unlink(missing_ok=True)
        old.with_name(f"{old.stem}-rpc.jar").unlink(missing_ok=True)


def router_jar() -> Path | None:
    """The router's jar, built now if need be; None to route in Flink SQL instead."""
    choice = os.environ.get("RIVERFLINK_ROUTER", "")
    if choice.strip().lower() not in ("", "java", "sql"):
        from riverflink.config.settings import SettingsError

        raise SettingsError(f"RIVERFLINK_ROUTER={choice!r}: java (the default) or sql")
    if choice.strip().lower() == "sql":
        return None
    path = jar_path()
    if path.is_file():
        return path
    try:
        return build_jar(path)
    except (OSError, RuntimeError):
        return None  # no JDK, or a read-only environment: the SQL route works everywhere
