"""Submit the job to a Flink cluster and stop it with a savepoint, through Flink's own CLI.

    riverflink submit --source incoming/ --follow --output out/ --parallelism 2
    riverflink stop JOB_ID --savepoint-dir savepoints/

``submit`` is ``flink run -d -py jobs/online_learning.py`` with the project's
packages shipped as a zip (``-pyfs``): a TaskManager imports riverflink's
operators from what the job carries, not from the machine it runs on. Paths are made absolute
first, since the client and the TaskManagers do not share a working directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from riverflink.cluster.standalone import ClusterError, flink_home, rest_get
from riverflink.config.flink_conf import conf_dir, flink_settings
from riverflink.config.inputs import local_path
from riverflink.config.paths import conf_files_dir, package_dirs, state_dir
from riverflink.config.settings import JobSettings, SettingsError

__all__ = [
    "FlinkCliError",
    "absolute_paths",
    "code_archive",
    "require_cluster",
    "run_flags",
    "submit_job",
    "stop_job",
]

_JOB_ID = re.compile(r"JobID ([0-9a-f]{32})")
_SAVEPOINT = re.compile(r"Savepoint completed\. Path: (\S+)")


class FlinkCliError(RuntimeError):
    """``bin/flink`` failed; ``output`` holds what it printed."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output


def absolute_paths(settings: JobSettings) -> JobSettings:
    """The same settings with every local path absolute (as the cluster must see them)."""
    changes = {}
    if not settings.is_socket:
        changes["source"] = str(Path(settings.source).resolve())
    if settings.output != "-":
        changes["output"] = str(Path(settings.output).resolve())
    if settings.checkpoint_dir:
        changes["checkpoint_dir"] = str(Path(settings.checkpoint_dir).resolve())
    if settings.restore and settings.restore != "latest":
        changes["restore"] = str(Path(settings.restore).resolve())
    for name in ("init_model", "init_models", "schema"):
        if getattr(settings, name):
            changes[name] = str(Path(getattr(settings, name)).resolve())
    return settings.with_changes(**changes)


def run_flags(settings: JobSettings) -> list[str]:
    """``riverflink run`` flags that reproduce ``settings`` (defaults left out)."""
    flags: list[str] = []
    for field in dataclasses.fields(JobSettings):
        value = getattr(settings, field.name)
        if value is None or value is False or value == field.default:
            continue
        flag = "--" + field.name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, tuple):
            flags += [flag, ",".join(value)]
        else:
            flags += [flag, str(value)]
    return flags


def require_cluster(jobmanager: str) -> None:
    """Fail in seconds, not after Flink's client retries, when nothing answers there."""
    try:
        rest_get(jobmanager, "/overview")
    except (OSError, ValueError) as exc:
        raise ClusterError(
            f"no Flink cluster answers at http://{jobmanager} ({getattr(exc, 'reason', exc)}); "
            "start one with `riverflink cluster start`, or point --jobmanager HOST:PORT at yours"
        ) from exc


def _flink(args: list[str], timeout: float) -> str:
    """Run ``bin/flink ARGS`` with riverflink's configuration; return its output."""
    env = dict(
        os.environ,
        FLINK_HOME=str(flink_home()),
        FLINK_CONF_DIR=str(conf_dir()),
        FLINK_LOG_DIR=str(state_dir() / "client-log"),
    )
    env.pop("PYFLINK_GATEWAY_PORT", None)
    command = ["bash", str(flink_home() / "bin" / "flink"), *args]
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise FlinkCliError(f"flink {args[0]} did not answer within {timeout:.0f} s", "") from exc
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise FlinkCliError(f"flink {args[0]} failed (exit code {result.returncode})", output)
    return output


def code_archive(path: Path) -> Path:
    """Zip the ``riverflink`` package, as installed, for ``-pyfs``.

    Flink puts a shipped directory itself on the workers' ``PYTHONPATH`` (so
    ``riverflink/`` would give ``import cli``, not ``import riverflink.cli``); a shipped
    zip is unpacked and its root goes on the path, which keeps the package names. An
    editable install's folders (``jobs/``, ``operators/``, ``state/``) go in under the
    names they are imported by, with riverflink's Flink configuration. The router's Java
    sources go too: the job is built from the unpacked copy, which finds its router jar by
    the digest of those sources (``riverflink.pipeline.router_jar``); without them it would
    route in Flink SQL, and no savepoint of a local run would restore.
    """
    members: dict[str, Path] = {}
    for name, root in package_dirs().items():
        prefix = name.replace(".", "/")
        for source in sorted([*root.rglob("*.py"), *root.rglob("java/**/*.java")]):
            members.setdefault(f"{prefix}/{source.relative_to(root).as_posix()}", source)
    for source in sorted(conf_files_dir().glob("*")):  # as installed: riverflink/flink_conf/
        if source.is_file():
            members.setdefault(f"riverflink/flink_conf/{source.name}", source)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, source in sorted(members.items()):
            archive.write(source, member)
    return path


def submit_job(settings: JobSettings, jobmanager: str, timeout: float = 300.0) -> str:
    """Submit the job detached; return its JobID."""
    from riverflink.config.specs import check_specs

    if settings.savepoint_on_exit:
        raise SettingsError(
            "--savepoint-on-exit waits for the job to finish, but a submitted job runs "
            "detached; stop it later with `riverflink stop JOB_ID --savepoint-dir DIR`"
        )
    check_specs(settings)  # before Flink starts: the model, drift and metric specs
    settings = absolute_paths(settings)
    require_cluster(jobmanager)
    with tempfile.TemporaryDirectory(prefix="riverflink-submit-") as tmp:
        args = [
            "run",
            "--detached",
            "-m",
            jobmanager,
            "-py",
            str(package_dirs()["riverflink"] / "online_learning.py"),
            "-pyfs",
            str(code_archive(Path(tmp) / "riverflink.zip")),
            "-pyclientexec",
            sys.executable,
            "-pyexec",
            sys.executable,
            *run_flags(settings),
        ]
        output = _flink(args, timeout)
    match = _JOB_ID.search(output)
    if not match:
        raise FlinkCliError("flink run printed no JobID", output)
    return match.group(1)


def stop_job(
    job_id: str, jobmanager: str, savepoint_dir: str | None = None, timeout: float = 300.0
) -> str:
    """Stop the job with a savepoint; return the savepoint's local path."""
    directory = (
        savepoint_dir
        or flink_settings().get("execution.checkpointing.savepoint-dir")
        or "savepoints"
    )
    if not directory.startswith(("file:", "/")) and "://" not in directory:
        directory = str(Path(directory).resolve())
    require_cluster(jobmanager)
    output = _flink(["stop", "--savepointPath", directory, "-m", jobmanager, job_id], timeout)
    match = _SAVEPOINT.search(output)
    if not match:
        raise FlinkCliError("flink stop printed no savepoint path", output)
    return local_path(match.group(1))
