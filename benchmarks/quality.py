"""What ``--schema FILE`` and ``--feature-drift SPEC`` cost: the whole job, and per record.

    python -m benchmarks.quality [--records 300000] [--keys 1000] [--repeat 3] [--lines 50000]
        [--chunk 1000]

The input is ``benchmarks.throughput.generate``'s: 10 numeric features x0..x9 and a
boolean label y. The schema holds 12 properties, all of them in every record: ``key``
(string, required), ``y`` (boolean) and x0..x9 (numbers between -10 and 10, bounds that
every generated value keeps). The feature detector is ``drift.ADWIN()``, so 10 of them
per key. Everything else is the job's default (model, ``--drift``).

In process (far less noisy): ``riverflink.replay`` (the job's own per-record steps, in
plain Python) over the input's first ``--lines`` lines, plain, with ``schema=`` and with
``feature_drift=``: the three generators run side by side, each taking ``--chunk``
lines in turn, so that the machine's drift hits them alike; CPU microseconds a record,
and what each option adds to a record, taken chunk by chunk; and
``operators.schema.schema_error`` alone on the same chunks' decoded records.

The whole job: ``riverflink run --profile throughput --quiet`` at parallelism 1 on the
``--records`` records over ``--keys`` keys, plain, with ``--schema`` and with
``--feature-drift``, each run a process timed as a whole (JVM start-up included) into a
fresh output directory; the steady rate is the records/s between the first and the last
change of the workers' live line counts (``operators/live_counts.py``, read every 0.1 s,
rewritten by the workers every 0.5 s). The runs must write one prediction per record
and reject none. An untimed run on 10,000 lines comes first (files and caches read).

Each round of jobs runs every variant, the order rotated from round to round (in
process, each turn of chunks takes the next of the six orders); seconds are medians over
rounds, and each ratio (or difference) is taken within a round, then its median
reported, so that a shared machine's drift over minutes cancels out. The last lines
also set schema_error's µs a record against the plain job's at its steady rate: what
the schema should cost the job, from the two steadiest figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.throughput import generate, steady_rate, watch_run

DETECTOR = "drift.ADWIN()"
#: The issue's goal: the schema costs at most this share of the job's throughput.
SCHEMA_GOAL = 0.15
VARIANTS = ("plain", "schema", "feature drift")
#: In process, the order of the variants in each turn: every order in turn, so that none
#: always follows another (the one after feature drift finds the caches full of its data).
ORDERS = list(itertools.permutations(VARIANTS))
LABELS = {
    "plain": "plain",
    "schema": "--schema (12 properties)",
    "feature drift": f"--feature-drift {DETECTOR}",
}


def write_schema(path: Path, features: int = 10) -> dict:
    """The schema the generated records satisfy, written to ``path`` as JSON."""
    number = {"type": "number", "minimum": -10, "maximum": 10}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "key": {"type": "string", "minLength": 1},
            "y": {"type": "boolean"},
            **{f"x{j}": number for j in range(features)},
        },
        "required": ["key"],
    }
    path.write_text(json.dumps(schema, indent=2) + "\n")
    return schema


# -- in process ---------------------------------------------------------------------------


def in_process(lines: list, schema_path: Path, repeat: int, chunk: int) -> list:
    """Per round, {variant: [CPU seconds of each chunk]}: the variants' riverflink.replay
    generators run side by side over ``lines``, each taking ``chunk`` lines in turn (in
    each of the six orders in turn); ``"schema_error"``: schema_error alone over
    the same chunk's decoded records."""
    import riverflink as rf
    from riverflink.operators.schema import read_schema, schema_error

    options = {
        "plain": {},
        "schema": {"schema": str(schema_path)},
        "feature drift": {"feature_drift": DETECTOR},
    }
    for name, extra in options.items():  # imports and compiled specs, before any timing
        outputs = list(rf.replay(lines[:2000], **extra))
        assert not any(o["kind"] == "rejected" for o in outputs), f"{name}: rejected lines"
    text = read_schema(schema_path)
    records = [json.loads(line) for line in lines]
    assert all(schema_error(text, r) is None for r in records), "a record violates the schema"
    clock = time.process_time
    rounds = []
    for _ in range(repeat):
        replays = {name: rf.replay(lines, **extra) for name, extra in options.items()}
        seconds: dict = {name: [] for name in (*options, "schema_error")}
        for n, first in enumerate(range(0, len(lines) - chunk + 1, chunk)):
            order = ORDERS[n % len(ORDERS)]
            for name in order:
                outputs = replays[name]
                started = clock()
                predictions = 0
                while predictions < chunk:  # one a line; the line's alerts follow it
                    predictions += next(outputs)["kind"] == "prediction"
                seconds[name].append(clock() - started)
            started = clock()
            for record in records[first : first + chunk]:
                schema_error(text, record)
            seconds["schema_error"].append(clock() - started)
        rounds.append(seconds)
    return rounds


def report_in_process(rounds: list, chunk: int) -> dict:
    """Prints the table; returns {variant: [µs a record of each chunk, all rounds]}."""
    chunks = len(rounds[0]["plain"])
    print(
        f"per record, in process: riverflink.replay over {chunks * chunk:,} lines, the "
        f"variants side by side {chunk:,} lines at a time; CPU µs a record, medians over "
        f"{len(rounds)} round(s) x {chunks} chunks; added and ratio taken chunk by chunk"
    )
    print(f"  {'':34} {'µs/record':>10} {'added µs':>9} {'ratio':>6} {'whole rounds':>13}")
    per = {n: [s * 1e6 / chunk for r in rounds for s in r[n]] for n in rounds[0]}
    # each round whole (sum of its chunks): the µs a record of each round, for reference
    whole = {n: [sum(r[n]) * 1e6 / (chunks * chunk) for r in rounds] for n in rounds[0]}
    for name in (*VARIANTS, "schema_error"):
        added = ratio = ""
        if name in ("schema", "feature drift"):
            added = f"{statistics.median(v - p for v, p in zip(per[name], per['plain'])):+.1f}"
            ratio = f"{statistics.median(v / p for v, p in zip(per[name], per['plain'])):.3f}"
        label = LABELS.get(name, "schema_error() alone")
        rounds_text = " ".join(f"{w:.1f}" for w in whole[name])
        print(
            f"  {label:34} {statistics.median(per[name]):10.2f} {added:>9} {ratio:>6} "
            f"{rounds_text:>13}"
        )
    return per


# -- the whole job ------------------------------------------------------------------------


def run_job(work: Path, name: str, out: Path, extra: list) -> dict:
    """One whole run: its seconds, steady records/s (None if unknown) and output lines."""
    cmd = [sys.executable, "-m", "riverflink", "run", "--source", "in.jsonl"]
    cmd += ["--output", str(out), "--profile", "throughput", "--quiet", *extra]
    samples: list = []
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    watcher = threading.Thread(target=watch_run, args=(proc, samples, None, 0.1), daemon=True)
    watcher.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"riverflink run ({name}) failed ({proc.returncode}):\n{err[-2000:]}")
    steady = steady_rate(samples)
    lines = {
        kind: sum(sum(1 for _ in open(p, "rb")) for p in (out / kind).glob("part*"))
        for kind in ("predictions", "alerts", "rejected")
    }
    return {"seconds": seconds, "steady": steady, **lines}


def whole_job(work: Path, schema_path: Path, records: int, repeat: int) -> list:
    extra = {
        "plain": [],
        "schema": ["--schema", str(schema_path)],
        "feature drift": ["--feature-drift", DETECTOR],
    }
    warm = work / "warm-up.jsonl"  # an untimed first run: files and caches read once
    with open(work / "in.jsonl", "rb") as fh, open(warm, "wb") as out:
        out.writelines(itertools.islice(fh, 10_000))
    cmd = [sys.executable, "-m", "riverflink", "run", "--source", str(warm), "--quiet"]
    subprocess.run([*cmd, "--output", str(work / "out-warm-up")], cwd=work, capture_output=True)
    rounds = []
    for round_ in range(repeat):
        order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]
        runs = {}
        for name in order:
            out = work / f"out-{name.replace(' ', '-')}-{round_}"
            runs[name] = run_job(work, name, out, extra[name])
            run = runs[name]
            assert run["predictions"] == records, (
                f"{name}: {run['predictions']:,} predictions of {records:,} records"
            )
            assert run["rejected"] == 0, f"{name}: {run['rejected']:,} rejected lines"
        rounds.append(runs)
        print(
            f"round {round_ + 1}: "
            + ", ".join(
                f"{n} {runs[n]['seconds']:.1f} s"
                + (f" ({runs[n]['steady']:,.0f} rec/s)" if runs[n]["steady"] else "")
                for n in order
            ),
            flush=True,
        )
    return rounds


def report_job(rounds: list, records: int, keys: int) -> dict:
    print(
        f"\nwhole job, parallelism 1, {records:,} records over {keys:,} keys, --profile "
        f"throughput (medians of {len(rounds)} rounds; ratios taken within a round)"
    )
    head = f"{'seconds':>8} {'ratio':>6} {'steady rec/s':>13} {'ratio':>6}"
    print(f"  {'':34} {head} {'predictions':>12} {'alerts':>7} {'rejected':>9}")
    costs = {}
    for name in VARIANTS:
        seconds = statistics.median(r[name]["seconds"] for r in rounds)
        ratio = statistics.median(r["plain"]["seconds"] / r[name]["seconds"] for r in rounds)
        steadies = [r for r in rounds if r[name]["steady"] and r["plain"]["steady"]]
        steady = steady_ratio = None
        if steadies:
            steady = statistics.median(r[name]["steady"] for r in steadies)
            steady_ratio = statistics.median(
                r[name]["steady"] / r["plain"]["steady"] for r in steadies
            )
        costs[name] = (1 - ratio, None if steady_ratio is None else 1 - steady_ratio)
        print(
            f"  {LABELS[name]:34} {seconds:8.1f} {ratio:6.3f} "
            + (f"{steady:13,.0f} {steady_ratio:6.3f} " if steady else f"{'-':>13} {'-':>6} ")
            + f"{max(r[name]['predictions'] for r in rounds):12,} "
            f"{max(r[name]['alerts'] for r in rounds):7,} "
            f"{max(r[name]['rejected'] for r in rounds):9,}"
        )
    print("  (ratios: the row's records/s over the plain run's of the same round)")
    steadies = [r["plain"]["steady"] for r in rounds if r["plain"]["steady"]]
    costs["plain steady"] = statistics.median(steadies) if steadies else None
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lines", type=int, default=50_000, help="for the in-process part")
    parser.add_argument("--chunk", type=int, default=1000, help="in process: lines a turn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riverflink-bench-quality-") as tmp:
        work = Path(tmp)
        generate(work / "in.jsonl", args.records, args.keys)
        schema_path = work / "schema.json"
        write_schema(schema_path)
        lines = (work / "in.jsonl").read_bytes().splitlines()[: args.lines]
        print(
            f"{args.records:,} records, 10 features, {args.keys:,} keys; schema of 12 "
            f"properties; feature detector {DETECTOR} (10 per key); {args.repeat} round(s)"
        )
        print()
        rounds = in_process(lines, schema_path, args.repeat, args.chunk)
        per = report_in_process(rounds, args.chunk)
        print()
        rounds = whole_job(work, schema_path, args.records, args.repeat)
        costs = report_job(rounds, args.records, args.keys)
    print()
    for name, goal in (("schema", SCHEMA_GOAL), ("feature drift", None)):
        whole, steady = costs[name]
        figures = [f"{whole:+.1%} whole run"]
        if steady is not None:
            figures.append(f"{steady:+.1%} steady rate")
        added = statistics.median(v - p for v, p in zip(per[name], per["plain"]))
        share = 1 - statistics.median(p / v for v, p in zip(per[name], per["plain"]))
        figures.append(f"{share:+.1%} in process ({added:+.1f} µs a record)")
        line = f"{LABELS[name]}: throughput cost " + ", ".join(figures)
        if goal is not None:
            verdicts = [("whole run", whole), ("steady", steady)]
            line += f"; goal <= {goal:.0%}: " + ", ".join(
                f"{what} {'met' if cost <= goal else 'NOT met'}"
                for what, cost in verdicts
                if cost is not None
            )
        print(line)
    plain_steady = costs["plain steady"]
    if plain_steady:
        alone = statistics.median(per["schema_error"])
        job = 1e6 / plain_steady
        print(
            f"schema_error() alone, {alone:.2f} µs a record, against the plain job's "
            f"{job:.1f} µs a record at its steady rate: {alone / (job + alone):.1%} of "
            "its throughput"
        )


if __name__ == "__main__":
    main()
