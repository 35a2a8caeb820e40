"""``riverflink report``, ``riverflink package`` and ``riverflink warm-up``."""

from __future__ import annotations

import argparse
import subprocess
import sys

__all__ = ["package_command", "report_command", "warm_up_command"]


def report_command(args: argparse.Namespace) -> int:
    from riverflink.results.report import write_report

    try:
        table, written = write_report(
            args.out_dir, keys=args.keys, html_path=args.html, png_dir=args.png
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    for path in written:
        print(f"riverflink: wrote {path}", file=sys.stderr)
    return 0


def package_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from riverflink.cluster.submit import code_archive

    path = Path(args.zip)
    if path.exists():
        print(f"riverflink: error: {path} exists; name a new file", file=sys.stderr)
        return 2
    if not path.parent.is_dir():
        print(f"riverflink: error: {path.parent} is not a directory", file=sys.stderr)
        return 2
    print(code_archive(path).resolve())
    return 0


def warm_up_command() -> int:
    from riverflink.accel.jvm_archive import build_archive
    from riverflink.pipeline.router_jar import build_jar, jar_path

    path = jar_path()
    if not path.is_file():
        try:
            build_jar(path)
            print(f"riverflink: built the router {path}", file=sys.stderr)
        except (RuntimeError, OSError) as exc:
            print(
                f"riverflink: could not build the router, so jobs route in Flink SQL "
                f"(slower): {exc}",
                file=sys.stderr,
            )
    try:
        path, took = build_archive()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"riverflink: warm-up failed; runs start the slow way: {exc}", file=sys.stderr)
        return 1
    size = path.stat().st_size / 1e6
    print(f"riverflink: wrote {path} ({size:,.0f} MB) in {took:.0f} s", file=sys.stderr)
    return 0
