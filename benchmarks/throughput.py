"""`make bench`: the job against a plain River loop, side by side, on the same data.

    python -m benchmarks.throughput [--records 1000000] [--keys 1000] [--seed 1]
        [--repeat 3] [--full] [--skip noaccel,p2,...]

The data: ``generate()``'s records (10 numeric features, a boolean label), drift
``none``, the default model. The runs, each a whole process timed from the moment it
is started: the plain River loop (``benchmarks.plain_loop``), and the job file to file
(``--profile throughput``, the default for files) at parallelism 1 and 2, each once
with its start-up accelerators and once with ``RIVERFLINK_ACCELERATE=0`` (every one of
them off; the output is the same). Each run gives:

- **start-up**: from the command's start to its first prediction;
- **steady** records/s: from the first to the last prediction;
- the **whole run**: seconds to the process's exit, and records/s over them;
- **peak RSS**: the largest total resident memory of the run's process tree (client,
  JVM, Python workers; sampled every 0.2 s from /proc, shared pages counted once per
  process).

How the first and last prediction are seen. The plain loop prints them itself: its
clock (``time.monotonic``, CLOCK_MONOTONIC, the same in every process) after it wrote
its first prediction and after its last. The job writes its output files only when
it commits them at the end, so its predictions are seen in the workers instead:
``riverflink run`` hands its JVM and Python workers a directory
(``operators/live_counts.py``) in which each subtask's worker rewrites its line
counts every 0.5 s while they change and once more as it closes; this process finds
that directory in the environment of the run's children and reads it every 0.05 s
(:func:`watch_run`). Steady records/s are the lines counted between the first and the
last change of the counts over the time between them. The first change comes up to
0.5 s after the first prediction, with the lines of that half second already counted:
start-up is the first change minus those lines' time at the steady rate (at most
0.5 s plus one read; unknown if the directory was found only after lines were
counted in it). Watching a job costs this process about 2% of a core. Every run must
write one prediction a record.

Rounds (``--repeat``; `make bench` uses 3) run every variant, the order rotated from
round to round, after one untimed run of the plain loop and of the job on 10,000 lines
(files and caches read). Figures are medians over rounds (peak RSS: the largest);
each ratio is taken within a round, then its median reported, so that a shared
machine's drift over minutes cancels out. The ratios are printed against the goals of issue 26.

``--full`` adds what takes longer: ``tree.HoeffdingTreeClassifier()`` (plain loop,
parallelism 1 and 2, with accelerators), one run with ``--profile latency``, a
checkpointed state of ``--state-keys`` keys, and latency on a socket feed
(``benchmarks.latency``) in both profiles.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIGHT = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
HEAVY = "tree.HoeffdingTreeClassifier()"
NO_ACCEL = "RIVERFLINK_ACCELERATE=0"
#: Seconds between reads of a run's live counts.
POLL = 0.05


def generate(path: Path, records: int, keys: int, features: int = 10, seed: int = 1) -> None:
    rng = random.Random(seed)
    weights = [[rng.uniform(-1, 1) for _ in range(features)] for _ in range(keys)]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(records):
            k = rng.randrange(keys)
            x = [round(rng.gauss(0, 1), 5) for _ in range(features)]
            y = sum(w * v for w, v in zip(weights[k], x)) > 0
            fields = {f"x{j}": v for j, v in enumerate(x)}
            fh.write(json.dumps({"key": f"k{k}", "id": i, **fields, "y": y}) + "\n")


# -- watching a run: its process tree, memory and live counts -----------------------------


def _processes() -> tuple:
    """({ppid: [pid]}, {pid: RSS bytes}) of every process, from /proc."""
    children: dict = {}
    rss = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * page
    return children, rss


def descendants(pid: int, children: dict | None = None) -> list:
    """``pid`` and every process under it (``children``: from :func:`_processes`)."""
    if children is None:
        children, _ = _processes()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _tree_rss(pid: int) -> int:
    """Total RSS (bytes) of ``pid`` and its descendants, from /proc."""
    children, rss = _processes()  # one scan of /proc
    return sum(rss.get(p, 0) for p in descendants(pid, children))


def counts_dir(pid: int) -> str | None:
    """The live-counts directory of the run ``pid``: its JVM and workers inherit it in
    their environment (the client sets it in its own after it started)."""
    from riverflink.operators.live_counts import ENV

    wanted = f"{ENV}=".encode()
    for p in descendants(pid)[1:]:
        try:
            with open(f"/proc/{p}/environ", "rb") as fh:
                for item in fh.read().split(b"\0"):
                    if item.startswith(wanted):
                        return item[len(wanted) :].decode()
        except OSError:
            continue
    return None


def watch_run(
    proc: subprocess.Popen, samples: list, peak: list | None = None, poll=POLL, late=None
):
    """Until ``proc`` ends: append ``(time.monotonic(), lines)`` to ``samples`` (unless
    None) whenever its workers' live line count changes; keep ``peak[0]`` the largest
    total RSS of its process tree (read every 0.2 s), if ``peak`` is given. ``late`` (a
    list) gets True if the counts directory was found only after lines had been counted
    in it (then the first sample is not the first change)."""
    from riverflink.operators.live_counts import read_live_counts

    directory, last, next_rss, next_look = None, 0, 0.0, 0.0
    while proc.poll() is None:
        now = time.monotonic()
        if peak is not None and now >= next_rss:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            next_rss = now + 0.2
        if directory is None and samples is not None and now >= next_look:
            directory = counts_dir(proc.pid)  # a scan of /proc: every 0.2 s at most
            next_look = now + 0.2
            if directory is not None and late is not None:
                counts = read_live_counts(directory)
                late.append(bool(counts and counts.get("lines")))
        if directory is not None:
            counts = read_live_counts(directory)
            lines = counts.get("lines", 0) if counts else 0
            if lines > last:
                samples.append((time.monotonic(), lines))
                last = lines
        time.sleep(poll)


def steady_rate(samples: list) -> float | None:
    """Lines a second between the first and the last change of the live counts."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return None
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return (n1 - n0) / (t1 - t0)


# -- one run ------------------------------------------------------------------------------


def measure(cmd: list, env: dict | None = None, plain: bool = False) -> dict:
    """One run to completion: its seconds, peak RSS bytes, start-up seconds (to the first
    prediction) and steady records/s (None where unknown); ``plain``: the plain loop,
    which prints its own first and last prediction's time (else the live counts)."""
    from riverflink.operators.live_counts import INTERVAL

    samples: list = []
    peak = [0]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    late: list = []
    watcher = threading.Thread(
        target=watch_run, args=(proc, None if plain else samples, peak, POLL, late), daemon=True
    )
    watcher.start()
    _, err = proc.communicate()
    seconds = time.monotonic() - started
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    run = {"seconds": seconds, "peak": peak[0], "startup": None, "steady": None}
    if plain:  # the loop's own clock readings, its last line on stderr
        stamps = json.loads(err.strip().splitlines()[-1])
        run["startup"] = stamps["first"] - started
        if stamps["predictions"] > 1 and stamps["last"] > stamps["first"]:
            run["steady"] = (stamps["predictions"] - 1) / (stamps["last"] - stamps["first"])
    elif samples:
        run["steady"] = rate = steady_rate(samples)
        # The longest wait between two changes of the counts (rewritten every 0.5 s while
        # they change): how long the stream stood still at worst.
        run["longest_pause"] = max((b[0] - a[0] for a, b in zip(samples, samples[1:])), default=0)
        first, lines = samples[0]
        behind = min(lines / rate, INTERVAL + POLL) if rate else 0.0
        if not any(late):  # else the first change was missed: start-up unknown
            run["startup"] = first - behind - started
    return run


@dataclass(frozen=True)
class Variant:
    parallelism: int  # 0: the plain loop
    accelerate: bool = True

    @property
    def label(self) -> str:
        if not self.parallelism:
            return "plain River loop"
        return f"riverflink p={self.parallelism}" + ("" if self.accelerate else f", {NO_ACCEL}")


PLAIN = Variant(0)


def job_cmd(source: Path, output: Path, spec: str, parallelism: int, *extra: str) -> list:
    return [
        sys.executable,
        "-m",
        "riverflink.online_learning",
        "--source",
        str(source),
        "--output",
        str(output),
        "--model",
        spec,
        "--drift",
        "none",
        "--parallelism",
        str(parallelism),
        *extra,
    ]


def count_lines(directory: Path) -> int:
    return sum(sum(1 for _ in open(p, "rb")) for p in directory.glob("part*"))


def run_variant(variant: Variant, source: Path, work: Path, spec: str, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if not variant.parallelism:
        out = work / "plain.jsonl"
        cmd = [sys.executable, "-m", "benchmarks.plain_loop", str(source), str(out), spec]
        return measure(cmd, env, plain=True)
    if not variant.accelerate:
        env["RIVERFLINK_ACCELERATE"] = "0"
    out = work / f"out-p{variant.parallelism}"
    shutil.rmtree(out, True)
    run = measure(job_cmd(source, out, spec, variant.parallelism, *extra), env)
    run["predictions"] = count_lines(out / "predictions")
    return run


# -- rounds and their report --------------------------------------------------------------


def rounds_of(variants: list, repeat: int, source: Path, work: Path, spec: str, records: int):
    """Per round, {variant: run}; every variant in each round, the order rotated."""
    rounds = []
    for round_ in range(repeat):
        shift = round_ % len(variants)
        order = variants[shift:] + variants[:shift]
        runs = {}
        for variant in order:
            runs[variant] = run = run_variant(variant, source, work, spec)
            lines = run.get("predictions", records)
            assert lines == records, f"{variant.label}: {lines:,} predictions of {records:,}"
        rounds.append(runs)
        print(
            f"  round {round_ + 1}: "
            + "; ".join(
                f"{v.label.replace('riverflink ', '').replace(NO_ACCEL, 'no accel')} "
                f"{runs[v]['seconds']:.1f} s (first "
                + ("?" if runs[v]["startup"] is None else f"{runs[v]['startup']:.1f}")
                + " s)"
                for v in order
            ),
            flush=True,
        )
    return rounds


def _median(rounds: list, variant: Variant, what: str):
    values = [r[variant][what] for r in rounds if r[variant][what] is not None]
    return statistics.median(values) if values else None


def _ratio(rounds: list, a: Variant, b: Variant, what: str):
    """Median over rounds of a's over b's records/s: ``what`` is "steady" or "whole"."""
    values = []
    for r in rounds:
        if what == "whole":
            values.append(r[b]["seconds"] / r[a]["seconds"])
        elif r[a]["steady"] and r[b]["steady"]:
            values.append(r[a]["steady"] / r[b]["steady"])
    return statistics.median(values) if values else None


def report_rows(rounds: list, variants: list, records: int) -> None:
    for v in variants:
        seconds, startup, steady = (_median(rounds, v, w) for w in ("seconds", "startup", "steady"))
        report_row(v.label, seconds, max(r[v]["peak"] for r in rounds), startup, steady, records)


def report_row(label, seconds, peak, startup, steady, records) -> None:
    startup = f"{startup:.2f}" if startup is not None else "-"
    steady = f"{steady:,.0f}" if steady else "-"
    print(
        f"{label:<42} {startup:>8} {steady:>9} {seconds:>8.1f} {records / seconds:>9,.0f}"
        f" {peak / 2**20:>7,.0f}MB",
        flush=True,
    )


def _verdict(value, goal: float, at_least: bool) -> str:
    if value is None:
        return "unknown"
    return "met" if (value >= goal if at_least else value <= goal) else "NOT met"


def report_goals(rounds: list, variants: list, goals: bool = True) -> None:
    """The ratios (and start-ups) issue 26 sets goals for, with and without accelerators."""
    print(f"{'ratios (median of the ratios within each round)':<58} {'value':>6}  goal")
    for accelerate in (True, False):
        p1, p2 = Variant(1, accelerate), Variant(2, accelerate)
        tail = "" if accelerate else f", {NO_ACCEL}"
        lines = []
        if p1 in variants:
            lines.append(
                (f"p=1 / plain loop, steady rec/s{tail}", _ratio(rounds, p1, PLAIN, "steady"), 0.8)
            )
            lines.append(
                (f"p=1 / plain loop, whole run{tail}", _ratio(rounds, p1, PLAIN, "whole"), 0.7)
            )
        if p1 in variants and p2 in variants:
            lines.append((f"p=2 / p=1, whole run{tail}", _ratio(rounds, p2, p1, "whole"), 1.75))
        for label, value, goal in lines:
            shown = f"{value:6.2f}" if value is not None else f"{'-':>6}"
            judged = f"  >= {goal:.2f}: {_verdict(value, goal, True)}" if goals else ""
            print(f"  {label:<56} {shown}{judged}")
    print(f"{'start-up to the first prediction (median)':<58} {'s':>6}")
    for v in variants:
        value = _median(rounds, v, "startup")
        goal = None if not v.parallelism or not goals else (4.0 if v.accelerate else 8.0)
        shown = f"{value:6.2f}" if value is not None else f"{'-':>6}"
        judged = f"  <= {goal:.0f} s: {_verdict(value, goal, False)}" if goal else ""
        print(f"  {v.label:<56} {shown}{judged}")


# -- --full: state and latency ------------------------------------------------------------


def completed_checkpoints(log_dir: Path | None = None) -> list:
    """``(id, bytes, duration ms)`` of every checkpoint the last local run completed, in
    order, from Flink's log (rewritten by every local run)."""
    if log_dir is None:
        log_dir = Path(__import__("pyflink").__file__).parent / "log"
    pattern = re.compile(
        r"Completed checkpoint (\d+) for job \w+ \((\d+) bytes, "
        r"checkpointDuration=(\d+) ms"
    )
    found = []
    for log in log_dir.glob("*python*.log"):
        with open(log, errors="replace") as fh:
            found += [tuple(map(int, m.groups())) for m in pattern.finditer(fh.read())]
    return sorted(found)


def checkpoint_stats(work: Path, keys: int, profile: str) -> dict:
    """Run a 100k-key stream with checkpoints; read sizes and durations from Flink's log."""
    source = work / f"keys-{keys}.jsonl"
    if not source.exists():
        generate(source, records=2 * keys, keys=keys, seed=2)
    ckpt, out = work / "ckpt", work / "out-ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    cmd = job_cmd(
        source,
        out,
        LIGHT,
        1,
        "--checkpoint-dir",
        str(ckpt),
        "--checkpoint-interval",
        "2",
        "--profile",
        profile,
    )
    elapsed = measure(cmd, env=dict(os.environ, PYTHONPATH=str(REPO)))["seconds"]
    found = completed_checkpoints()
    if not found:
        return {"keys": keys, "seconds": elapsed}
    # The last checkpoint is taken after the input ended (everything already processed);
    # the ones before it were taken while records streamed through.
    during = found[:-1] or found
    durations = sorted(f[2] for f in during)
    return {
        "keys": keys,
        "checkpoints": len(found),
        "largest_bytes": max(f[1] for f in found),
        "bytes_per_key": max(f[1] for f in found) / keys,
        "median_ms": statistics.median(durations),
        "max_ms": durations[-1],
        "seconds": elapsed,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument(
        "--seed", type=int, default=1, help="of the generated data (another seed: other data)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--full", action="store_true", help="also the Hoeffding tree, state and latency"
    )
    parser.add_argument("--state-keys", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=2000, help="socket feed, records/s")
    parser.add_argument("--feed-seconds", type=float, default=20.0)
    parser.add_argument(
        "--skip", default="", help="comma list: noaccel,p2 (and with --full: heavy,state,latency)"
    )
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if not args.full:
        skip |= {"heavy", "state", "latency"}

    import river
    from pyflink.version import __version__ as flink_version

    work = REPO / "out" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "input.jsonl"
    generate(source, args.records, args.keys, seed=args.seed)
    print(
        f"riverflink benchmark: {args.records:,} records, {args.keys:,} keys, 10 features, "
        f"drift none, data seed {args.seed}; {args.repeat} round(s) of every run, the order "
        "rotated: medians over rounds, ratios taken within a round"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, apache-flink {flink_version}, river {river.__version__}"
    )
    # Untimed: files and caches read once, by a job and by the plain loop.
    warm = work / "warm-up.jsonl"
    with open(source, "rb") as fh, open(warm, "wb") as out:
        out.writelines(itertools.islice(fh, 10_000))
    run_variant(PLAIN, warm, work, LIGHT)
    run_variant(Variant(1), warm, work, LIGHT)

    parallelisms = (1,) if "p2" in skip else (1, 2)
    light = [PLAIN] + [
        Variant(p, accelerate)
        for p in parallelisms
        for accelerate in ((True,) if "noaccel" in skip else (True, False))
    ]
    models = [("default model", LIGHT, light)]
    if "heavy" not in skip:
        models.append((HEAVY, HEAVY, [PLAIN] + [Variant(p) for p in parallelisms]))
    head = f"{'run':<42} {'start-up':>8} {'steady':>9} {'whole':>8} {'whole':>9} {'peak':>9}"
    units = f"{'':<42} {'s':>8} {'rec/s':>9} {'s':>8} {'rec/s':>9} {'RSS':>9}"
    for label, spec, variants in models:
        print(f"\n{label}: {spec}")
        rounds = rounds_of(variants, args.repeat, source, work, spec, args.records)
        print(head)
        print(units)
        report_rows(rounds, variants, args.records)
        if spec == LIGHT and "latency" not in skip:
            run = run_variant(Variant(1), source, work, spec, "--profile", "latency")
            assert run["predictions"] == args.records, "--profile latency: predictions lost"
            report_row(
                "riverflink p=1, --profile latency (1 run)",
                run["seconds"],
                run["peak"],
                run["startup"],
                run["steady"],
                args.records,
            )
        report_goals(rounds, variants, goals=spec == LIGHT)
    if "state" not in skip:
        print(
            f"\nstate of {args.state_keys:,} keys (default model, {2 * args.state_keys:,} "
            "records, a checkpoint every 2 s; durations of checkpoints taken mid-stream):"
        )
        for profile in ("latency", "throughput"):
            stats = checkpoint_stats(work, args.state_keys, profile)
            print(
                f"  --profile {profile}: "
                + ", ".join(f"{k} {v:,.0f}" for k, v in stats.items() if k != "keys"),
                flush=True,
            )
    if "latency" not in skip:
        from benchmarks import latency

        print(f"socket feed at {args.rate:,} records/s for {args.feed_seconds:.0f} s, --output -:")
        for profile in ("latency", "throughput"):
            latency.report(
                latency.measure(rate=args.rate, seconds=args.feed_seconds, profile=profile)
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
