"""``riverflink export``: every key's model out of a checkpoint or savepoint."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["export_command", "key_ids"]


def key_ids(keys: str) -> set:
    """The key ids (JSON text) that ``--keys K1,K2`` names: each as a string, and as the
    number or boolean it reads as, since the outputs write both alike.

    >>> sorted(key_ids("u1,7"))
    ['"7"', '"u1"', '7']
    """
    out = set()
    for key in (k.strip() for k in keys.split(",")):
        if not key:
            continue
        out.add(json.dumps(key))
        try:
            value = json.loads(key)
        except ValueError:
            continue
        if isinstance(value, (int, float, bool)):
            out.add(key)
    return out


def export_command(args: argparse.Namespace) -> int:
    from riverflink.config.settings import SettingsError
    from riverflink.runtime.export import export_models, snapshot_path

    try:
        path = snapshot_path(args.path, args.checkpoint_dir)
        keys = key_ids(args.keys) if args.keys else None
        written = export_models(path, args.output, keys)
    except SettingsError as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 2
    print(f"riverflink: exported {written:,} models to {args.output}", file=sys.stderr)
    return 0
