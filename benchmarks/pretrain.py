"""`riverflink pretrain` against the plain River loop it replaces, on the same file.

    python -m benchmarks.pretrain [--records 200000] [--keys 100] [--repeat 3] [--model SPEC]

The plain loop is what a user would write: read the file line by line, ``json.loads``
each line, drop the key, id and label fields, ``predict_one`` then ``learn_one`` on one
model. Every measurement runs in a fresh process, so that none inherits another's heap:

- the plain loop and ``Pretraining.feed`` over the file's lines (what the command does
  per line), each timed inside its process, after the imports;
- the plain loop's whole process and the whole ``riverflink pretrain`` command, start-up
  and imports included (a user waits for those too).

Each round runs the four, the plain ones first in odd rounds and last in even ones;
seconds are medians over rounds, and each ratio is taken within a round, then its
median reported, so that a shared machine's drift cancels out. Wall-clock and CPU
time are both shown: on a busy machine, CPU time is the steadier of the two.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import LIGHT, generate

REPO = Path(__file__).resolve().parent.parent
ROWS = {
    "plain": "plain River loop, timed inside",
    "feed": "Pretraining.feed, timed inside",
    "plain process": "plain River loop, whole process",
    "command": "riverflink pretrain, whole command",
}
#: Each ratio: the row over its plain counterpart, within a round.
RATIOS = {"feed": "plain", "command": "plain process"}


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
    """What ``riverflink pretrain`` does with the lines, without its command around it."""
    from riverflink.config.inputs import read_input
    from riverflink.operators.pretraining import Pretraining

    pretraining = Pretraining(spec)
    pretraining.feed(read_input(Path(path)).splitlines())
    return pretraining.model


def _time_inside(which: str, path: str, spec: str, save: str | None) -> None:
    """In the child: import everything, time one loop, print wall and CPU seconds."""
    loop = plain_loop if which == "plain" else pretrain
    loop("/dev/null", spec)  # the imports, which the whole-process rows include
    wall, cpu = time.perf_counter(), time.process_time()
    model = loop(path, spec)
    print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
    if save:
        Path(save).write_bytes(pickle.dumps(model))


def _process(cmd: list) -> tuple:
    """(wall seconds, CPU seconds, stdout) of a command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def _round(data: Path, model: str, tmp: Path, plain_first: bool) -> dict:
    """One round: {row: (wall, cpu)}; checks that the two loops learned one model."""
    me = [sys.executable, "-m", "benchmarks.pretrain", "--model", model, "--time"]
    saved, written = tmp / "plain.pkl", tmp / "command.pkl"
    written.unlink(missing_ok=True)
    times = {}

    def plain():
        wall, cpu, out = _process([*me, "plain", str(data), "--save", str(saved)])
        times["plain"], times["plain process"] = tuple(json.loads(out)), (wall, cpu)

    def ours():
        times["feed"] = tuple(json.loads(_process([*me, "feed", str(data)])[2]))
        command = [sys.executable, "-m", "riverflink", "pretrain", "--source", str(data)]
        times["command"] = _process([*command, "--output", str(written), "--model", model])[:2]

    for step in (plain, ours) if plain_first else (ours, plain):
        step()
    a, b = pickle.loads(saved.read_bytes()), pickle.loads(written.read_bytes())
    probe = [{f"x{j}": (k - 5) / 3 for j in range(10)} for k in range(10)]
    assert all(a.predict_proba_one(x) == b.predict_proba_one(x) for x in probe), "not one model"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default=LIGHT)
    parser.add_argument("--time", nargs=2, metavar=("LOOP", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time:
        _time_inside(*args.time, args.model, args.save)
        return
    rounds = []
    with tempfile.TemporaryDirectory(prefix="riverflink-bench-") as tmp:
        data = Path(tmp, "history.jsonl")
        generate(data, args.records, args.keys)
        print(f"{args.records:,} records, 10 features, {args.keys} keys; model {args.model}")
        for i in range(args.repeat):
            times = _round(data, args.model, Path(tmp), plain_first=i % 2 == 0)
            rounds.append(times)
            print(f"round {i + 1}: " + ", ".join(f"{n} {times[n][0]:.2f} s" for n in ROWS))
    print(f"\nmedians of {args.repeat} rounds; ratios taken within a round (wall / CPU),")
    print("and of the fastest runs (best wall / best CPU), steadier on a busy machine:")
    head = f"{'wall s':>7} {'CPU s':>7} {'µs/record':>10} {'ratio':>13} {'best ratio':>13}"
    print(f"  {'':34} {head}")
    for name, label in ROWS.items():
        wall = statistics.median(r[name][0] for r in rounds)
        cpu = statistics.median(r[name][1] for r in rounds)
        ratio = best = ""
        if name in RATIOS:
            base = RATIOS[name]
            ratio = " / ".join(
                f"{statistics.median(r[name][i] / r[base][i] for r in rounds):.3f}" for i in (0, 1)
            )
            best = " / ".join(
                f"{min(r[name][i] for r in rounds) / min(r[base][i] for r in rounds):.3f}"
                for i in (0, 1)
            )
        per = wall * 1e6 / args.records
        print(f"  {label:34} {wall:7.2f} {cpu:7.2f} {per:10.1f} {ratio:>13} {best:>13}")


if __name__ == "__main__":
    main()
