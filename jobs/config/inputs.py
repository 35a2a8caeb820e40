"""What a run reads: its input files, as Flink's file source reads them, and local paths
as Flink names them.

Settings check inputs before Flink starts (a compressed file PyFlink cannot read is
refused), the progress line counts their lines, and ``--savepoint-on-exit`` waits
until every line has its committed output.
"""

from __future__ import annotations

import bz2
import gzip
import re
import zlib
from collections.abc import Iterable
from pathlib import Path

from riverflink.operators.records import is_blank

__all__ = [
    "REFUSED_COMPRESSION",
    "UnreadableInput",
    "count_records",
    "flink_uri",
    "input_files",
    "local_path",
    "read_input",
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
        fast = _count_without_blank_lines(data)
        total += fast if fast is not None else _count_line_by_line(data)
    return total


def _count_line_by_line(data: bytes) -> int:
    lines = _LINE_BREAK.split(data)
    if lines and lines[-1] == b"":
        lines.pop()
    return sum(1 for line in lines if not is_blank(line))


#: Bytes a blank line can hold: whitespace but line breaks (what ``str.strip`` removes;
#: the ASCII ones, then every byte of a multi-byte character, a byte-order mark's too).
_BLANK_BYTES = rb"[\t\x0b\x0c\x1c-\x20\x80-\xff]*"
#: Per line break: (the first line, any later line) made of such bytes only.
_MAYBE_BLANK = {
    sep: (
        re.compile(_BLANK_BYTES + rb"(?:" + sep + rb"|\Z)"),
        re.compile(sep + _BLANK_BYTES + rb"(?:" + sep + rb"|\Z)"),
    )
    for sep in (b"\n", b"\r\n")
}


def _count_without_blank_lines(data: bytes) -> int | None:
    """The lines of ``data``, found without splitting it (a few scans in C instead of a
    Python loop over every line: seconds for a million lines, on the way to a run's
    start). None where a line may be blank or line breaks are mixed."""
    if not data:
        return 0
    if b"\r" not in data:
        sep, breaks = b"\n", data.count(b"\n")
    else:
        sep, breaks = b"\r\n", data.count(b"\r\n")
        if data.count(b"\r") != breaks or data.count(b"\n") != breaks:
            return None
    trailing = len(sep) if data.endswith(sep) else 0
    end = len(data) - trailing  # the last line's end (Java drops the empty line after it)
    first, later = _MAYBE_BLANK[sep]
    if first.match(data, 0, end) or later.search(data, 0, end):
        return None
    return breaks + (trailing == 0)


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
