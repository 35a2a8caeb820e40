"""`riverflink pretrain` against the plain River loop it replaces, on the same file.

    python -m benchmarks.pretrain [--records 200000] [--keys 100] [--repeat 3] [--model SPEC]

The plain loop is what a user would write: read the file line by line, ``json.loads``
each line, drop the key, id and label fields, ``predict_one`` then ``learn_one`` on one
model. It is timed in this process, and as a process of its own (start-up and imports
included), beside ``Pretraining.feed`` over the file's lines (in this process) and the
whole ``riverflink pretrain`` command (a process). Each round runs the four in turn;
seconds are medians over rounds, and each ratio is taken within a round, then its
median reported, so that a shared machine's drift cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import LIGHT, generate

REPO = Path(__file__).resolve().parent.parent


def plain_loop(path: str, spec: str):
    """One River model over every line, as a user writes it; returns the model."""
    from riverflink.state.spec import parse_model

    model = parse_model(spec)
    predict, learn = model.predict_one, model.learn_one
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            x = json.loads(line)
            del x["key"]
            x.pop("id", None)
            y = x.pop("y", None)
            predict(x)
            if y is not None:
                learn(x, y)
    return model


def pretrain(path: str, spec: str):
    """What ``riverflink pretrain`` does per line, without its command around it."""
    from riverflink.config.inputs import read_input
    from riverflink.operators.pretraining import Pretraining

    pretraining = Pretraining(spec)
    pretraining.feed(read_input(Path(path)).splitlines())
    return pretraining


def _timed(fn, *args) -> tuple:
    """(wall seconds, CPU seconds of this process, what ``fn`` returned)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _process(cmd: list) -> tuple:
    """(wall seconds, CPU seconds) of a command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


ROWS = {
    "plain": "plain River loop, in process",
    "feed": "Pretraining.feed, in process",
    "plain process": "plain River loop, as a process",
    "command": "riverflink pretrain, the command",
}
#: Each ratio: the row over its plain counterpart, within a round.
RATIOS = {"feed": "plain", "command": "plain process"}


def _round(data: Path, model: str, out: Path) -> tuple:
    """One round: {row: (wall, cpu)}, and the Pretraining."""
    plain_wall, plain_cpu, plain_model = _timed(plain_loop, str(data), model)
    feed_wall, feed_cpu, pretraining = _timed(pretrain, str(data), model)
    same = all(
        plain_model.predict_proba_one(x) == pretraining.model.predict_proba_one(x)
        for x in ({f"x{j}": (k - 5) / 3 for j in range(10)} for k in range(10))
    )
    assert same, "the two loops learned different models"
    python = [sys.executable, "-m"]
    plain_proc = _process([*python, "benchmarks.pretrain", "--plain", str(data), "--model", model])
    command = [*python, "riverflink", "pretrain", "--source", str(data), "--output", str(out)]
    times = {
        "plain": (plain_wall, plain_cpu),
        "feed": (feed_wall, feed_cpu),
        "plain process": plain_proc,
        "command": _process([*command, "--model", model]),
    }
    return times, pretraining


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default=LIGHT)
    parser.add_argument("--plain", metavar="FILE", help=argparse.SUPPRESS)  # the loop's process
    args = parser.parse_args()
    if args.plain:
        plain_loop(args.plain, args.model)
        return
    plain_loop(os.devnull, args.model)  # imports River and riverflink: not what is timed
    pretrain(os.devnull, args.model)
    with tempfile.TemporaryDirectory(prefix="riverflink-bench-") as tmp:
        data = Path(tmp, "history.jsonl")
        generate(data, args.records, args.keys)
        print(f"{args.records:,} records, 10 features, {args.keys} keys; model {args.model}")
        rounds = []
        for i in range(args.repeat):
            times, pretraining = _round(data, args.model, Path(tmp, f"model-{i}.pkl"))
            rounds.append(times)
            print(f"round {i + 1}: " + ", ".join(f"{n} {w:.2f} s" for n, (w, _) in times.items()))
    print(f"\nmedians of {args.repeat} rounds; ratios taken within a round (wall / CPU):")
    print(f"  {'':34} {'wall s':>7} {'CPU s':>7} {'µs/record':>10} {'ratio':>13}")
    for name, label in ROWS.items():
        wall = statistics.median(r[name][0] for r in rounds)
        cpu = statistics.median(r[name][1] for r in rounds)
        ratio = ""
        if name in RATIOS:
            base = RATIOS[name]
            wall_ratio = statistics.median(r[name][0] / r[base][0] for r in rounds)
            cpu_ratio = statistics.median(r[name][1] / r[base][1] for r in rounds)
            ratio = f"{wall_ratio:.3f} / {cpu_ratio:.3f}"
        per = wall * 1e6 / args.records
        print(f"  {label:34} {wall:7.2f} {cpu:7.2f} {per:10.1f} {ratio:>13}")
    print(f"  {pretraining.metric!r} prequential, {pretraining.learned:,} records learned")


if __name__ == "__main__":
    main()
