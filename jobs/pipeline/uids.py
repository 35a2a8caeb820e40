"""The stable uids of the job's operators: Flink finds each operator's state by its uid.

A savepoint restores into a job only where the uids match, so these names are part
of riverflink's compatibility: changing one orphans that operator's state.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["UIDS", "file_source_uid"]


UIDS = {
    "source": "riverflink-source",
    "route": "riverflink-route",
    "learn": "riverflink-learn-per-key",
    "predictions": "riverflink-sink-predictions",
    "alerts": "riverflink-sink-alerts",
    "outcomes": "riverflink-sink-outcomes",
    "rejected": "riverflink-sink-rejected",
    "stdout": "riverflink-sink-stdout",
}


def file_source_uid(source: str, follow: bool) -> str:

    path = str(Path(source).resolve()).encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(path).hexdigest()[:16]
    return f"{UIDS['source']}-{'follow' if follow else 'files'}-{digest}"
