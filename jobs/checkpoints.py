"""Finding checkpoints on disk: what ``--restore latest`` resolves to."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

__all__ = ["latest_checkpoint"]


def latest_checkpoint(checkpoint_dir: str) -> Optional[Path]:
    """The newest *completed* checkpoint under ``checkpoint_dir``, or None.

    Flink lays checkpoints out as ``DIR/<job-id>/chk-<n>/``; a checkpoint is
    complete once its ``_metadata`` file exists (it is written last).
    """
    root = Path(checkpoint_dir)
    candidates = list(root.glob("*/chk-*/_metadata")) + list(root.glob("chk-*/_metadata"))
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: (p.stat().st_mtime, int(p.parent.name[4:] or 0)))
    return newest.parent
