"""`make bench`: the job against a plain River loop, side by side, on the same data.

    python -m benchmarks.throughput [--records 300000] [--keys 1000] [--seed 1] [--repeat 3]

Every figure is a whole process, start-up included (a user waits for that too),
timed wall-clock. Each model runs in rounds (``--repeat``, `make bench` uses 3): the
plain loop, then the job at parallelism 1 and 2, in turn. Seconds are medians over
rounds; each ratio is taken within a round, then the median reported, so that a
shared machine's drift over minutes cancels out. The memory high-water
mark is the largest total RSS of the job's process tree (client, JVM, Python
workers) while it ran. File runs use the job's default for files, ``--profile
throughput``; one row shows ``--profile latency`` on the same file, and the last
lines measure latency on a socket feed (``benchmarks.latency``) in both profiles.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIGHT = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
HEAVY = "tree.HoeffdingTreeClassifier()"


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


def _tree_rss(pid: int) -> int:
    """Total RSS (bytes) of ``pid`` and its descendants, from /proc."""
    children: dict = {}
    rss = {}
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
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def timed(cmd: list, env: dict | None = None) -> tuple:
    """(seconds, peak RSS bytes) of a command run to completion."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak = [0]

    def watch():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - started
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return elapsed, peak[0]


def median_run(cmd: list, repeat: int, prepare=None) -> tuple:
    runs = []
    for _ in range(repeat):
        if prepare:
            prepare()
        runs.append(timed(cmd, env=dict(os.environ, PYTHONPATH=str(REPO))))
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


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


def run_job(label: str, source: Path, work: Path, spec: str, parallelism: int, repeat: int, *extra):
    out = work / f"out-{label}-{parallelism}"
    seconds, peak = median_run(
        job_cmd(source, out, spec, parallelism, *extra),
        repeat,
        prepare=lambda: shutil.rmtree(out, True),
    )
    return seconds, peak, count_lines(out / "predictions")


def count_lines(directory: Path) -> int:
    return sum(sum(1 for _ in open(p, "rb")) for p in directory.glob("part*"))


def checkpoint_stats(work: Path, keys: int, profile: str) -> dict:
    """Run a 100k-key stream with checkpoints; read sizes and durations from Flink's log."""
    source = work / f"keys-{keys}.jsonl"
    if not source.exists():
        generate(source, records=2 * keys, keys=keys, seed=2)
    ckpt, out = work / "ckpt", work / "out-ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    log_dir = Path(__import__("pyflink").__file__).parent / "log"
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
    elapsed, peak = timed(cmd, env=dict(os.environ, PYTHONPATH=str(REPO)))
    pattern = re.compile(
        r"Completed checkpoint (\d+) for job \w+ \((\d+) bytes, "
        r"checkpointDuration=(\d+) ms"
    )
    found = []
    for log in log_dir.glob("*python*.log"):  # rewritten by every local run
        with open(log, errors="replace") as fh:
            found += [tuple(map(int, m.groups())) for m in pattern.finditer(fh.read())]
    if not found:
        return {"keys": keys, "seconds": elapsed}
    found.sort()
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
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument(
        "--seed", type=int, default=1, help="of the generated data (another seed: other data)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--state-keys", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=2000, help="socket feed, records/s")
    parser.add_argument("--feed-seconds", type=float, default=20.0)
    parser.add_argument("--skip", default="", help="comma list: light,heavy,p2,state,latency")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    import apache_beam  # noqa: F401 - version report only
    import river
    from pyflink.version import __version__ as flink_version

    work = REPO / "out" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "input.jsonl"
    generate(source, args.records, args.keys, seed=args.seed)
    print(
        f"riverflink benchmark: {args.records:,} records, {args.keys:,} keys, 10 features, "
        f"drift none, data seed {args.seed}; plain loop and job in turn, {args.repeat} "
        "round(s): medians, ratios taken round by round"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, apache-flink {flink_version}, river {river.__version__}"
    )
    print(f"{'run':<44} {'seconds':>8} {'rec/s':>9} {'ratio':>6} {'peak RSS':>9}")

    def report(name, seconds, peak, base=None, ratio=None):
        rate = args.records / seconds
        if ratio is None:
            ratio = rate / base if base else 1.0
        ratio = f"{ratio:.2f}"
        print(
            f"{name:<44} {seconds:>8.1f} {rate:>9,.0f} {ratio:>6} {peak / 2**20:>7.0f}MB",
            flush=True,
        )
        return rate

    models = [("light", LIGHT)] + ([] if "heavy" in skip else [("heavy", HEAVY)])
    for label, spec in models:
        if label in skip:
            continue
        # Rounds of plain loop, p=1, p=2 in turn: each ratio compares runs a minute apart,
        # so the machine's drift (on shared VMs, tens of percent within minutes) cancels.
        parallelisms = (1,) if "p2" in skip else (1, 2)
        plain_out = work / "plain.jsonl"
        plain_cmd = [sys.executable, "-m", "benchmarks.plain_loop", str(source), str(plain_out)]
        rounds = []
        for _ in range(args.repeat):
            seconds, peak = median_run([*plain_cmd, spec], 1)
            runs = {0: (seconds, peak)}
            for parallelism in parallelisms:
                seconds, peak, lines = run_job(label, source, work, spec, parallelism, 1)
                assert lines == args.records, f"lost predictions: {lines:,} of {args.records:,}"
                runs[parallelism] = (seconds, peak)
            rounds.append(runs)

        def median(parallelism, index=0, of=rounds):
            return statistics.median(r[parallelism][index] for r in of)

        def median_ratio(a, b, of=rounds):  # records/s of a over b, round by round
            return statistics.median(r[b][0] / r[a][0] for r in of)

        base = report(f"plain River loop, {label}", median(0), max(r[0][1] for r in rounds))
        for parallelism in parallelisms:
            seconds, peak = median(parallelism), max(r[parallelism][1] for r in rounds)
            report(
                f"riverflink p={parallelism}, {label}",
                seconds,
                peak,
                base,
                ratio=median_ratio(parallelism, 0),
            )
        if len(parallelisms) == 2:
            print(f"{'  p=2 / p=1':<44} {median_ratio(2, 1):>25.2f}")
        if label == "light" and "latency" not in skip:
            seconds, peak, lines = run_job(
                "light-latency", source, work, spec, 1, 1, "--profile", "latency"
            )
            assert lines == args.records, f"lost predictions: {lines:,} of {args.records:,}"
            report("riverflink p=1, light, --profile latency (1 run)", seconds, peak, base)
    if "state" not in skip:
        print(
            f"state of {args.state_keys:,} keys (default model, {2 * args.state_keys:,} "
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
