"""Generated record streams shared by unit and integration tests."""

from __future__ import annotations

import random

__all__ = ["delayed_label_stream"]


def delayed_label_stream(
    n: int = 2000,
    keys=("a", "b", "c"),
    *,
    seed: int = 5,
    max_delay: int = 40,
    drift_key: str | None = "a",
    orphans: int = 5,
) -> list:
    """Records whose labels mostly arrive later, as separate key/id/label records.

    Per event: features and label together (1 in 5), features never labeled (1 in
    10), or features now and the label ``0..max_delay`` records later in the
    stream. The concept of ``drift_key`` flips halfway. ``orphans`` labels name
    ids that were never predicted, and as many labels arrive a second time; both
    must be rejected.
    """
    rng = random.Random(seed)
    weights = {k: [rng.uniform(-2, 2) for _ in range(3)] for k in keys}
    out: list = []
    later: dict = {}  # stream position -> labels due there
    for i in range(n):
        key = rng.choice(keys)
        x = {f"f{j}": round(rng.gauss(0, 1), 6) for j in range(3)}
        y = sum(w * v for w, v in zip(weights[key], x.values())) + rng.gauss(0, 0.3) > 0
        if key == drift_key and i > n // 2:
            y = not y
        roll = rng.random()
        if roll < 0.2:
            out.append({"key": key, "id": i, **x, "y": y})
        elif roll < 0.3:
            out.append({"key": key, "id": i, **x})
        else:
            out.append({"key": key, "id": i, **x, "y": None})
            later.setdefault(i + rng.randint(0, max_delay), []).append(
                {"key": key, "id": i, "y": y}
            )
        for label in later.pop(i, []):
            out.append(label)
    for position in sorted(later):
        out.extend(later[position])
    labels = [r for r in out if "f0" not in r]
    for _ in range(orphans):
        at = rng.randrange(len(out))
        out.insert(at, {"key": rng.choice(keys), "id": n + rng.randrange(10_000), "y": True})
        twice = rng.choice(labels)
        at = out.index(twice) + 1 + rng.randrange(20)
        out.insert(at, dict(twice))
    return out
