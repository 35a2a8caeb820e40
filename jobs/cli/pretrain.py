"""``riverflink pretrain``: one model over a history's labeled records, saved as a pickle.

    riverflink pretrain --source history/ --output model-a.pkl --model SPEC

The records are read as the job reads a bounded file source (every file under a
directory, compressed ones decompressed by their extension), keys ignored, in file
order; see :mod:`riverflink.operators.pretraining`. It runs in plain Python, without
Flink. It prints the prequential metric and the counts on stdout, then writes the River
estimator itself with :mod:`pickle`: loading it needs River and nothing of riverflink.

A bad spec, flag, source or output path, a model that learns without labels, or a
history without a labeled record, ends the command with one line on stderr and exit
code 2; a model that cannot be written, with exit code 1. No file is written then.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import sys
import tempfile
from pathlib import Path

__all__ = ["pretrain_command", "summary_lines"]


class _Refused(Exception):
    """One line for stderr, and exit code 2."""


def _fields(args: argparse.Namespace):
    """The job's field roles from --key, --id, --target and --features, checked as the
    job checks them."""
    from riverflink.config.settings import LearnOptions, SettingsError
    from riverflink.operators.records import Fields

    features = None
    if args.features is not None:
        features = tuple(name.strip() for name in args.features.split(","))
    roles = {"key": args.key, "id": args.id, "target": args.target}
    roles = {name: value for name, value in roles.items() if value is not None}
    try:
        options = LearnOptions(**roles, features=features)
    except SettingsError as exc:
        raise _Refused(str(exc)) from None
    return Fields(key=options.key, id=options.id, target=options.target, features=options.features)


def _check_paths(source: str, output: str) -> list:
    """The input files; refuses a missing source and an output that exists."""
    from riverflink.config.inputs import input_files

    if not Path(source).exists():
        raise _Refused(f"--source {source} does not exist")
    out = Path(output)
    if out.exists() or out.is_symlink():
        raise _Refused(f"--output {out} exists; choose another path or remove it")
    if not out.parent.is_dir():
        raise _Refused(f"--output {out}: {out.parent} is not a directory")
    return input_files(source)


def _learn(pretraining, files: list) -> None:
    """Every line of ``files``, in order, as Flink's file source splits them."""
    from riverflink.config.inputs import read_input

    for path in files:
        data = read_input(path)
        pretraining.feed(data.splitlines())  # \r\n, \r and \n, as Java's BufferedReader
        del data


def summary_lines(pretraining, files: int) -> list:
    """What ``pretrain`` prints: counts, the metric, rejections by reason."""
    p = pretraining
    lines = [
        f"riverflink pretrain: {p.records:,} records in {files:,} "
        f"file{'' if files == 1 else 's'}; the {p.kind} learned {p.learned:,} labeled ones",
        f"{p.metric!r} (prequential: each record predicted, then learned; "
        f"{p.scored:,} predictions scored)",
    ]
    if p.skipped:
        lines.append(
            f"skipped {p.skipped:,} records with nothing to learn: {p.unlabeled:,} "
            f"unlabeled, {p.label_only:,} label-only (a late label, no features)"
        )
    if p.rejected:
        lines.append(f"rejected {sum(p.rejected.values()):,} lines, by reason:")
        for reason, count in p.rejected.most_common():
            lines.append(f"  {count:>8,}  {reason}")
        if p.half_learned:
            lines.append(
                f"  ({p.half_learned:,} of them raised while learning, not before: the model "
                "may keep part of what they taught)"
            )
    return lines


def _nothing_learned(pretraining, source: str, target: str) -> str:
    p = pretraining
    counts = [f"{p.records:,} records"]
    if p.unlabeled:
        counts.append(f"{p.unlabeled:,} without label field {target!r}")
    if p.label_only:
        counts.append(f"{p.label_only:,} label-only (no features)")
    if p.rejected:
        reason, _ = p.rejected.most_common(1)[0]
        counts.append(f"{sum(p.rejected.values()):,} rejected (most often: {reason})")
    return f"no labeled record to learn in {source}: {', '.join(counts)}; nothing written"


def _write(model, output: str) -> int:
    """Pickle ``model`` to ``output`` atomically: a temporary file beside it, then
    ``os.replace``; the file gets the permissions of a new file (umask). Its size."""
    out = Path(output)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if out.exists():
            raise _Refused(f"--output {out} appeared while learning; choose another path")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out.stat().st_size


def pretrain_command(args: argparse.Namespace) -> int:
    from riverflink.config.inputs import UnreadableInput
    from riverflink.operators.pretraining import Pretraining
    from riverflink.results.outputs import reason_group

    try:
        fields = _fields(args)
        try:
            pretraining = Pretraining(args.model, fields, group=reason_group)
        except ValueError as exc:  # a SpecError, or a model that needs no label
            raise _Refused(str(exc)) from None
        files = _check_paths(args.source, args.output)
        try:
            _learn(pretraining, files)
        except (UnreadableInput, OSError) as exc:
            raise _Refused(str(exc)) from None
        if not pretraining.learned:
            raise _Refused(_nothing_learned(pretraining, args.source, fields.target))
        for line in summary_lines(pretraining, len(files)):
            print(line)
        sys.stdout.flush()
        try:
            size = _write(pretraining.model, args.output)
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            print(f"riverflink: error: could not write {args.output}: {exc}", file=sys.stderr)
            return 1
    except _Refused as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 2
    print(f"riverflink: wrote {args.output} ({size:,} bytes)", file=sys.stderr)
    return 0
