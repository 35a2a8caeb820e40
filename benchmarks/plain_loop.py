"""The loop a user would write without Flink: the baseline riverflink is measured against.

    python -m benchmarks.plain_loop IN.jsonl OUT.jsonl SPEC

Reads JSON lines, keeps a dict of per-key models, predict_one then learn_one,
writes one JSON prediction line per record. Its last line on stderr is JSON:
``{"first": T, "last": T, "predictions": N}``, the ``time.monotonic()`` (Linux:
CLOCK_MONOTONIC, one clock for every process) right after the first prediction was
written and after the last one (before the output file is closed), and how many
there were. The clock is read twice in all, not once a record.
"""

from __future__ import annotations

import json
import sys
import time

from riverflink.state.spec import parse_model


def main(source: str, target: str, spec: str) -> None:
    prototype = parse_model(spec)
    models: dict = {}
    seen: dict = {}
    first = None
    predictions = 0
    with open(source, encoding="utf-8") as inp, open(target, "w", encoding="utf-8") as out:
        for line in inp:
            record = json.loads(line)
            key, y = record.pop("key"), record.pop("y", None)
            rid = record.pop("id", None)
            model = models.get(key)
            if model is None:
                model = models[key] = prototype.clone()
                seen[key] = 0
            y_pred = model.predict_one(record)
            if y is not None:
                model.learn_one(record, y)
            out.write(
                json.dumps({"key": key, "id": rid, "y_pred": y_pred, "y_true": y, "n": seen[key]})
                + "\n"
            )
            seen[key] += 1
            predictions += 1
            if first is None:
                first = time.monotonic()
        last = time.monotonic()
    print(json.dumps({"first": first, "last": last, "predictions": predictions}), file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
