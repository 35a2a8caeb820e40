"""Finding checkpoints on disk: what ``--restore latest`` resolves to."""

from __future__ import annotations

from pathlib import Path

__all__ = ["latest_checkpoint"]


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
