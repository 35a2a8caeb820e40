"""A million keys: the job against a plain River loop on 2,000,000 records, side by side.

    python -m benchmarks.million [--keys 1000000] [--passes 2] [--seed 1]
        [--parallelism 1] [--interval 10]

The data: every key once in a shuffled order, then every key again in another shuffled
order (``--passes``), 10 numeric features and a boolean label, so that the first pass
makes a model per record and the second finds each key's model where the first left it,
long gone from any cache of recent keys. The runs, each a whole process timed from the
moment it is started:

- the plain River loop (``benchmarks.plain_loop``: a dict of a million models);
- ``riverflink run --state-backend rocksdb --checkpoint-interval 10`` into a fresh
  checkpoint directory, as a user would start it (``--profile throughput``, the default
  for files), with its accelerators.

Printed for each: start-up (to the first prediction), steady records/s, the whole run
and the peak RSS of its process tree, measured as in ``benchmarks.throughput``; for the
job also the checkpoints completed while records streamed (count, median and largest
duration, from Flink's log), the longest time its live line counts stood still (they
are rewritten every 0.5 s while they change), and whether every record was predicted
exactly once (every id once in ``predictions/``). Then the goals of issue 26: the job's
whole run at least 0.5 of the plain loop's records/s, checkpoints at most 10 s at the
median, the whole job at most 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
from pathlib import Path

from benchmarks.throughput import (
    LIGHT,
    REPO,
    completed_checkpoints,
    job_cmd,
    measure,
    report_row,
)

RATIO_GOAL = 0.5
CHECKPOINT_GOAL_MS = 10_000
MEMORY_GOAL = 4 * 2**30


def generate_passes(path: Path, keys: int, passes: int = 2, seed: int = 1) -> int:
    """Every key once per pass, each pass in its own shuffled order; the number of records."""
    rng = random.Random(seed)
    weights = [rng.uniform(-1, 1) for _ in range(10)]
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(passes):
            order = list(range(keys))
            rng.shuffle(order)
            for k in order:
                x = [round(rng.gauss(0, 1), 5) for _ in range(10)]
                y = sum(w * v for w, v in zip(weights, x)) + (k % 7 - 3) * 0.1 > 0
                fields = {f"x{j}": v for j, v in enumerate(x)}
                fh.write(json.dumps({"key": f"k{k}", "id": n, **fields, "y": y}) + "\n")
                n += 1
    return n


def predicted_once(directory: Path, records: int) -> tuple:
    """(predictions, distinct ids) in the job's ``predictions/`` part files."""
    ids = bytearray(records)
    lines = 0
    for part in directory.glob("part*"):
        with open(part, "rb") as fh:
            for line in fh:
                lines += 1
                i = json.loads(line)["id"]
                if 0 <= i < records and ids[i] < 255:
                    ids[i] += 1
    return lines, sum(1 for c in ids if c == 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="of the generated data")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--interval", type=float, default=10, help="between checkpoints, s")
    args = parser.parse_args(argv)

    work = REPO / "out" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"million-{args.keys}-{args.passes}-{args.seed}.jsonl"
    if not source.exists():
        generate_passes(source.with_suffix(".tmp"), args.keys, args.passes, args.seed)
        source.with_suffix(".tmp").rename(source)
    records = args.keys * args.passes
    print(
        f"\n{args.keys:,} keys, {records:,} records ({args.passes} passes over every key, "
        f"each in its own shuffled order), data seed {args.seed}; default model, drift none"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    loop = [sys.executable, "-m", "benchmarks.plain_loop", str(source), str(work / "plain.jsonl")]
    plain = measure([*loop, LIGHT], env, plain=True)
    (work / "plain.jsonl").unlink(missing_ok=True)
    out, ckpt = work / "out-million", work / "ckpt-million"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    extra = ["--state-backend", "rocksdb", "--checkpoint-dir", str(ckpt)]
    extra += ["--checkpoint-interval", f"{args.interval:g}"]
    job = measure(job_cmd(source, out, LIGHT, args.parallelism, *extra), env)
    checkpoints = completed_checkpoints()
    lines, once = predicted_once(out / "predictions", records)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(ckpt, ignore_errors=True)

    label = f"riverflink p={args.parallelism} (rocksdb, checkpoints)"
    print(f"{'run':<42} {'start-up':>8} {'steady':>9} {'whole':>8} {'whole':>9} {'peak':>9}")
    print(f"{'':<42} {'s':>8} {'rec/s':>9} {'s':>8} {'rec/s':>9} {'RSS':>9}")
    for name, run in (("plain River loop", plain), (label, job)):
        report_row(name, run["seconds"], run["peak"], run["startup"], run["steady"], records)
    # The last checkpoint is taken after the input ended; the others while records streamed.
    during = sorted(c[2] for c in (checkpoints[:-1] or checkpoints))
    median_ms = statistics.median(during) if during else None
    ratio = plain["seconds"] / job["seconds"]
    spread = f", median {median_ms / 1000:.1f} s, longest {during[-1] / 1000:.1f} s"
    print(
        f"  checkpoints while streaming: {len(during)}{spread if during else ''}; "
        f"largest {max((c[1] for c in checkpoints), default=0) / 2**20:,.0f} MB"
    )
    print(f"  longest the stream stood still: {job.get('longest_pause', 0):.1f} s")
    print(f"  predictions: {lines:,} lines, {once:,} of {records:,} ids exactly once")
    verdict = {True: "met", False: "NOT met"}
    met = verdict[ratio >= RATIO_GOAL]
    print(f"  job / plain loop, whole run: {ratio:.2f}  >= {RATIO_GOAL}: {met}")
    if median_ms is not None:
        met = median_ms <= CHECKPOINT_GOAL_MS
        print(f"  median checkpoint {median_ms / 1000:.1f} s  <= 10 s: {verdict[met]}")
    print(
        f"  peak memory of the job {job['peak'] / 2**30:.2f} GB  <= 4 GB: "
        f"{verdict[job['peak'] <= MEMORY_GOAL]}"
    )
    exact = lines == records and once == records
    print(f"  every record predicted exactly once: {verdict[exact]}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
