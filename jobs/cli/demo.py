"""`make demo`: generate a small drifting stream, run the job on the mini-cluster, summarize.

The data: four sensors (keys) whose label is a noisy linear function of three
readings; for sensor ``s0`` the concept flips halfway (the label is negated),
which the per-key ADWIN detector should flag. A few malformed lines show what
rejection looks like.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

from riverflink.config.settings import JobSettings

__all__ = ["generate", "summarize", "main"]

OUT = Path("out/demo")


def generate(path: Path, *, n: int = 8000, keys: int = 4, seed: int = 7) -> None:
    """Write ``n`` JSON-lines records plus a few bad lines to ``path``."""
    rng = random.Random(seed)
    weights = {f"s{k}": [rng.uniform(-1, 1) for _ in range(3)] for k in range(keys)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            key = f"s{i % keys}"
            x = {f"x{j}": round(rng.gauss(0, 1), 4) for j in range(3)}
            score = sum(w * v for w, v in zip(weights[key], x.values())) + rng.gauss(0, 0.1)
            label = score > 0
            if key == "s0" and i >= n // 2:
                label = not label  # concept drift
            fh.write(json.dumps({"key": key, "id": i, **x, "y": label}) + "\n")
            if i in (100, 2000, 5000):
                fh.write(
                    [
                        '{"key": "s1", "x0": 0.1',
                        '{"key": "s2", "x0": NaN, "y": true}',
                        '{"id": 5001, "x0": 1.0}',
                    ][(i > 100) + (i > 2000)]
                    + "\n"
                )


def _read(directory: Path):
    for part in sorted(directory.glob("part*")):
        with open(part, encoding="utf-8") as fh:
            yield from (json.loads(line) for line in fh if line.strip())


def summarize(output: Path, source: Path) -> dict:
    predictions = list(_read(output / "predictions"))
    labeled = [p for p in predictions if p["y_true"] is not None]
    correct = sum(p["y_pred"] == p["y_true"] for p in labeled)
    return {
        "records": sum(1 for line in open(source, encoding="utf-8") if line.strip()),
        "keys": len({json.dumps(p["key"]) for p in predictions}),
        "predictions": len(predictions),
        "prequential accuracy": round(correct / len(labeled), 4) if labeled else None,
        "alerts": len(list(_read(output / "alerts"))),
        "rejected": len(list(_read(output / "rejected"))),
    }


def main() -> int:
    from riverflink.runtime.local import run_job

    source, output = OUT / "input.jsonl", OUT / "output"
    generate(source)
    if output.exists():
        shutil.rmtree(output)
    settings = JobSettings(source=str(source), output=str(output), parallelism=2)
    print(f"riverflink demo: {settings.model} per key, drift {settings.drift}, on the mini-cluster")
    started = time.perf_counter()
    run_job(settings)
    elapsed = time.perf_counter() - started
    for name, value in summarize(output, source).items():
        print(f"  {name:<22} {value}")
    print(f"  {'wall time':<22} {elapsed:.1f} s (including Flink start-up)")
    print(f"  {'output':<22} {output.resolve()}/{{predictions,alerts,rejected}}/")
    # the console script of the Python that runs this (.venv/bin/ after `make demo`)
    script = Path(sys.executable).with_name("riverflink")
    command = None
    if script.exists() and shutil.which("riverflink") != str(script):
        command = os.path.relpath(script) if script.is_relative_to(Path.cwd()) else script
    print(
        f"see it: {command or 'riverflink'} report {output} "
        "(learning curves, drift alerts, rejections)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
