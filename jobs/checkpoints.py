"""Finding checkpoints on disk: what ``--restore latest`` resolves to."""

from __future__ import annotations

from pathlib import Path

__all__ = ["execution_mode_of", "holds_sql_windows", "latest_checkpoint"]


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
