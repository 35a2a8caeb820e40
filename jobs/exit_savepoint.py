"""``--savepoint-on-exit``: carry every key's model from one bounded run to the next.

A bounded Flink job that finishes normally discards its checkpoints, and its
finished tasks hold no state, so the models cannot be taken from the end of a
run. Instead the job keeps its tasks alive (the file source runs in continuous
mode over exactly the files present at start), riverflink waits until every
input line has its committed output (each non-blank line yields exactly one
prediction or one rejected line), then stops the job with a savepoint.
"""

from __future__ import annotations

import bz2
import gzip
import re
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

from operators.records import is_blank

__all__ = [
    "REFUSED_COMPRESSION",
    "flink_uri",
    "input_files",
    "read_input",
    "UnreadableInput",
    "count_records",
    "CommitCounter",
    "stop_with_savepoint",
]

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")  # how Java's BufferedReader splits lines

#: Flink's file source decompresses files by the last extension of their name
#: (``StandardDeCompression``); riverflink counts their lines the same way.
_DECOMPRESS = {
    ".gz": gzip.decompress,
    ".gzip": gzip.decompress,
    ".bz2": bz2.decompress,
    ".deflate": zlib.decompress,  # a zlib stream, as Java's InflaterInputStream reads it
}
#: Compressed inputs a local or PyFlink-based run cannot read, and why: riverflink refuses
#: them before the job starts (``JobSettings``), instead of losing their lines.
REFUSED_COMPRESSION = {
    ".xz": "Flink reads .xz with the XZ for Java library, which PyFlink does not ship "
    "(the job would fail on it); decompress it first (xz -d), or compress it with gzip",
    ".zst": "Flink's file source does not decompress .zst (its compressed bytes would be "
    "read as lines, all rejected); decompress it first (zstd -d), or compress it with gzip",
}


class UnreadableInput(ValueError):
    """An input file whose lines riverflink cannot count as Flink will read them."""


def input_files(source: str) -> list[Path]:
    """The files Flink's file source reads under ``source`` (hidden and _ files skipped)."""
    root = Path(source)
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def read_input(path: Path) -> bytes:
    """The bytes of ``path`` as Flink's file source reads them: decompressed by extension.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     plain, packed = Path(tmp, "a.jsonl"), Path(tmp, "b.jsonl.gz")
    ...     _ = plain.write_bytes(b'{"key": 1}\\n')
    ...     _ = packed.write_bytes(gzip.compress(b'{"key": 2}\\n'))
    ...     read_input(plain), read_input(packed)
    (b'{"key": 1}\\n', b'{"key": 2}\\n')
    """
    path = Path(path)
    if path.suffix in REFUSED_COMPRESSION:
        raise UnreadableInput(f"{path}: {REFUSED_COMPRESSION[path.suffix]}")
    data = path.read_bytes()
    decompress = _DECOMPRESS.get(path.suffix)
    if decompress is None:
        return data
    try:
        return decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableInput(f"{path}: not a valid {path.suffix} file ({exc})") from exc


def count_records(files: Iterable[Path]) -> int:
    """Lines the job will answer: every line that is not blank, valid or not."""
    total = 0
    for path in files:
        data = read_input(path)
        lines = _LINE_BREAK.split(data)
        if lines and lines[-1] == b"":
            lines.pop()
        total += sum(1 for line in lines if not is_blank(line))
    return total


class CommitCounter:
    """Counts committed output lines written after it was created (part files are immutable)."""

    def __init__(self, directories: Iterable[Path]):
        self.directories = list(directories)
        self.baseline = {p for d in self.directories for p in d.glob("part*")}
        self.counted: dict = {}

    def count(self) -> int:
        for directory in self.directories:
            for part in directory.glob("part*"):
                if part not in self.baseline and part not in self.counted:
                    with open(part, "rb") as fh:
                        self.counted[part] = sum(1 for line in fh if line.strip())
        return sum(self.counted.values())


def wait_for_output(job_client, counter: CommitCounter, total: int, poll: float = 0.5) -> None:
    """Block until ``total`` lines are committed; raise if the job stops first.

    The job's result is asked for at once: once a job has failed, its local cluster is
    gone, and with it any other way to learn why.
    """
    result = job_client.get_job_execution_result()
    while counter.count() < total:
        if result.done():
            result.result()  # raises the job's failure
            raise RuntimeError("the job ended before all input was processed")
        time.sleep(poll)


def stop_with_savepoint(
    job_client, directory: str, *, timeout: float = 120.0, poll: float = 0.5
) -> str:
    """Stop the job with a savepoint in ``directory``; returns the savepoint path.

    PyFlink 2.3's ``JobClient.stop_with_savepoint`` fails on a Py4J signature error, so
    this calls the Java client underneath.
    """
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    canonical = gateway.jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    uri = flink_uri(directory)
    deadline = time.monotonic() + timeout
    while True:
        try:
            path = str(job_client._j_job_client.stopWithSavepoint(False, uri, canonical).get())
            return local_path(path)
        except Exception as failure:  # noqa: BLE001 - Py4J wraps Flink's exceptions
            # An empty input has nothing to wait for: the savepoint may be asked for before
            # every task runs (the Python worker is still starting). Flink refuses it then,
            # and the job runs on: ask again.
            if time.monotonic() > deadline or not any(
                reason in str(failure) for reason in _NOT_RUNNING_YET
            ):
                raise
            time.sleep(poll)


#: How Flink refuses a savepoint while some task of the job has not started yet.
_NOT_RUNNING_YET = (
    "is not being executed at the moment",
    "Not all required tasks are currently running",
)


def local_path(path: str) -> str:
    """``file:/a/b`` or ``file:///a/b`` (as Flink reports paths) -> ``/a/b``.

    Flink writes a path into its URIs as it is, spaces and all (``file:/my data/x``), and
    reads it back the same way: nothing in them is percent-encoded, so nothing is decoded.
    """
    if not path.startswith("file:"):
        return path
    rest = path[len("file:") :]
    if rest.startswith("//"):  # file://authority/path; the authority of a local file is empty
        slash = rest.find("/", 2)
        rest = rest[slash:] if slash != -1 else "/"
    return rest


def flink_uri(path: str | Path) -> str:
    """A local path as the ``file://`` URI Flink expects: absolute, and not percent-encoded.

    Flink takes ``%20`` in a URI literally (a directory named ``my%20data``), so
    ``Path.as_uri()`` would send checkpoints and savepoints elsewhere than asked.
    """
    return "file://" + str(Path(path).resolve())
