"""Finding checkpoints on disk: what ``--restore latest`` resolves to."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "backend_of",
    "mentions",
    "execution_mode_of",
    "holds_operator",
    "holds_sql_windows",
    "latest_checkpoint",
    "operator_id",
]


def latest_checkpoint(checkpoint_dir: str) -> Path | None:
    """The newest *completed* checkpoint under ``checkpoint_dir``, or None.

    Flink lays checkpoints out as ``DIR/<job-id>/chk-<n>/``; a checkpoint is
    complete once its ``_metadata`` file exists (it is written last).
    """
    root = Path(checkpoint_dir)
    candidates = [
        p
        for p in list(root.glob("*/chk-*/_metadata")) + list(root.glob("chk-*/_metadata"))
        if p.parent.name[4:].isdigit()
    ]
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: (p.stat().st_mtime, int(p.parent.name[4:])))
    return newest.parent


#: How PyFlink names riverflink's keyed state inside a checkpoint, per Python execution mode.
#: The two modes store Python state under different names, so a checkpoint written in one
#: mode restores *no* model in the other: riverflink refuses that restore up front.
_PROCESS_PREFIX = b"python-state-"
_HEAD_BYTES = 1 << 16


def _state_names_in(path: Path):
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for file in files:
        with open(file, "rb") as fh:
            yield fh.read(_HEAD_BYTES) if file.name != "_metadata" else fh.read()


def state_heads(checkpoint) -> list:
    """``_metadata`` and the head of each state file of a checkpoint or savepoint directory
    (or of its ``_metadata``), where Flink writes state names and serializers before the
    data (a heap backend's first values follow)."""
    root = Path(checkpoint)
    return list(_state_names_in(root.parent if root.is_file() else root))


def mentions(checkpoint: str, text: bytes) -> bool:
    """Whether ``_metadata`` or the head of a state file of the checkpoint holds ``text``
    (a state name, a serializer's class name: Flink writes them before the data)."""
    root = Path(checkpoint)
    return any(text in chunk for chunk in _state_names_in(root.parent if root.is_file() else root))


def execution_mode_of(checkpoint: str, state_name: str) -> str | None:
    """The Python execution mode whose model state the checkpoint holds, or None if it holds none.

    Looks for the state name in ``_metadata`` and in the head of every state file of the
    checkpoint or savepoint directory (Flink writes state names before the data).
    """
    root = Path(checkpoint)
    if root.is_file():
        root = root.parent
    name = state_name.encode()
    found = set()
    for chunk in _state_names_in(root):
        start = chunk.find(name)
        while start != -1:
            prefixed = chunk[max(0, start - len(_PROCESS_PREFIX)) : start] == _PROCESS_PREFIX
            found.add("process" if prefixed else "thread")
            start = chunk.find(name, start + 1)
    if len(found) == 1:
        return found.pop()
    return None if not found else "mixed"


#: The state of the Flink SQL window that gathered lines before riverflink had its router.
_SQL_WINDOW_STATE = b"window-aggs"


def holds_sql_windows(checkpoint: str) -> bool:
    """Whether the checkpoint holds Flink SQL window state: lines gathered by SQL routing.

    Only a job that routes in SQL again can claim those lines; with riverflink's router
    they would be dropped unread.
    """
    root = Path(checkpoint)
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        return False
    return any(_SQL_WINDOW_STATE in chunk for chunk in _state_names_in(root))


_MASK = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k: int) -> int:
    k = ((k ^ (k >> 33)) * 0xFF51AFD7ED558CCD) & _MASK
    k = ((k ^ (k >> 33)) * 0xC4CEB9FE1A85EC53) & _MASK
    return k ^ (k >> 33)


def operator_id(uid: str) -> bytes:
    """The id under which a checkpoint keeps the state of the operator with this uid.

    Flink derives it from the uid alone: MurmurHash3 (x64, 128 bits, seed 0) of its UTF-8
    bytes, as Guava computes it (``StreamGraphHasherV2``). Checkpoint metadata stores
    the 16 bytes as they come.

    >>> operator_id("riverflink-source").hex()
    '4fbde0a818949646c66e66bb389a2402'
    """
    data = uid.encode()
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = 0
    whole = len(data) // 16 * 16
    for at in range(0, whole, 16):
        k1 = int.from_bytes(data[at : at + 8], "little")
        k2 = int.from_bytes(data[at + 8 : at + 16], "little")
        h1 ^= (_rotl((k1 * c1) & _MASK, 31) * c2) & _MASK
        h1 = ((_rotl(h1, 27) + h2) * 5 + 0x52DCE729) & _MASK
        h2 ^= (_rotl((k2 * c2) & _MASK, 33) * c1) & _MASK
        h2 = ((_rotl(h2, 31) + h1) * 5 + 0x38495AB5) & _MASK
    tail = data[whole:]
    if len(tail) > 8:
        h2 ^= (_rotl((int.from_bytes(tail[8:], "little") * c2) & _MASK, 33) * c1) & _MASK
    if tail:
        h1 ^= (_rotl((int.from_bytes(tail[:8], "little") * c1) & _MASK, 31) * c2) & _MASK
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return h1.to_bytes(8, "little") + h2.to_bytes(8, "little")


def holds_operator(checkpoint: str, uid: str) -> bool | None:
    """Whether the checkpoint or savepoint holds state of the operator with this uid.

    None when its ``_metadata`` cannot be read here (a remote file system, say).
    """
    root = Path(checkpoint)
    metadata = root if root.is_file() else root / "_metadata"
    try:
        return operator_id(uid) in metadata.read_bytes()
    except OSError:
        return None


def backend_of(checkpoint: str) -> str | None:
    """The state backend that wrote a *checkpoint* ("rocksdb" or "hashmap"); None for a
    savepoint (any backend reads it) or what cannot be read here.

    A checkpoint restores only into the backend that wrote it. riverflink's RocksDB
    checkpoints are incremental: their metadata names RocksDB's files (``*.sst``,
    ``MANIFEST-*``), which a heap backend's never do.
    """
    root = Path(checkpoint)
    chk = root.parent if root.is_file() else root
    if not chk.name.startswith("chk-"):
        return None
    try:
        data = (chk / "_metadata").read_bytes()
    except OSError:
        return None
    return "rocksdb" if b".sst" in data or b"MANIFEST-" in data else "hashmap"
