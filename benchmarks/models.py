"""Models in and out: how long `riverflink export` takes, and what --init-model costs.

    python -m benchmarks.models [--keys 100000] [--records 300000] [--repeat 3]

Export: a job writes one record for each of ``--keys`` keys and stops with a
savepoint; `riverflink export` is then timed as a whole process (JVM start-up
included), with the number of models it wrote.

--init-model: the job at parallelism 1 on ``--records`` records over 1,000 keys, with
the default model from its spec and with ``--init-model`` (the same model, pretrained
on the first 5,000 records), in alternating rounds; and the per-key learning step in
this process (riverflink.replay's loop, which the job's workers run per record), the
same two ways. Seconds are medians over rounds; ratios are taken within each round.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import LIGHT, generate

REPO = Path(__file__).resolve().parent.parent


def riverflink(*args: str, cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "riverflink", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"riverflink {args[0]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def bench_export(work: Path, keys: int) -> None:
    rng = random.Random(3)
    with open(work / "keys.jsonl", "w") as fh:
        for k in range(keys):
            x = {f"x{j}": round(rng.gauss(0, 1), 5) for j in range(10)}
            fh.write(json.dumps({"key": f"u{k}", **x, "y": rng.random() < 0.5}) + "\n")
    run = riverflink(
        "run",
        "--source",
        "keys.jsonl",
        "--output",
        "out",
        "--savepoint-on-exit",
        "sp",
        "--quiet",
        cwd=work,
    )
    (savepoint,) = (work / "sp").iterdir()
    took = riverflink("export", str(savepoint), "--output", "exported", cwd=work)
    models = sum(1 for _ in open(work / "exported" / "models.jsonl"))
    print(f"export: {models:,} models in {took:.1f} s (the run that wrote them: {run:.1f} s)")


def bench_init_model(work: Path, records: int, repeat: int) -> None:
    from river import linear_model, preprocessing

    import riverflink as rf

    generate(work / "in.jsonl", records, 1000)
    lines = (work / "in.jsonl").read_bytes().splitlines()
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for line in lines[:5000]:
        record = json.loads(line)
        y = record.pop("y")
        model.learn_one({k: v for k, v in record.items() if k.startswith("x")}, y)
    (work / "a.pkl").write_bytes(pickle.dumps(model))
    job = {"spec": [], "init": []}
    step = {"spec": [], "init": []}
    for round_ in range(repeat):
        for name, flags in (("spec", ["--model", LIGHT]), ("init", ["--init-model", "a.pkl"])):
            job[name].append(
                riverflink(
                    "run",
                    "--source",
                    "in.jsonl",
                    "--output",
                    f"out-{name}-{round_}",
                    "--drift",
                    "none",
                    "--quiet",
                    *flags,
                    cwd=work,
                )
            )
            options = {"model": LIGHT} if name == "spec" else {"init_model": str(work / "a.pkl")}
            started = time.perf_counter()
            for _ in rf.replay(lines, drift="none", **options):
                pass
            step[name].append(time.perf_counter() - started)
    for what, seconds in (("job, whole run", job), ("learning step, in process", step)):
        ratios = [i / s for i, s in zip(seconds["init"], seconds["spec"])]
        print(
            f"--init-model, {what}: {statistics.median(seconds['init']):.1f} s against "
            f"{statistics.median(seconds['spec']):.1f} s from the spec: "
            f"x{statistics.median(ratios):.3f} ({records:,} records, 1,000 keys)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riverflink-bench-models-") as tmp:
        work = Path(tmp)
        bench_export(work, args.keys)
        bench_init_model(work, args.records, args.repeat)


if __name__ == "__main__":
    main()
