"""``riverflink.load_models``: the models of an export directory, in plain Python."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

__all__ = ["load_models"]


def load_models(directory) -> dict:
    """Every key's River estimator in a directory that ``riverflink export`` wrote.

    Parameters
    ----------
    directory
        The export's directory, holding ``models.jsonl`` and the models' pickles.

    Returns
    -------
    dict
        Key (as in the job's outputs) -> River estimator, exactly as it stood in the
        checkpoint or savepoint exported.

    The models are pickles: loading one runs code chosen by whoever wrote it, so load
    only exports from a place you trust, as you would restore a checkpoint.

    Examples
    --------

    >>> import json, pickle, tempfile
    >>> from pathlib import Path
    >>> from river import linear_model
    >>> import riverflink
    >>> export = Path(tempfile.mkdtemp())
    >>> (export / "models").mkdir()
    >>> model = linear_model.LinearRegression()
    >>> _ = (export / "models" / "u1.pkl").write_bytes(pickle.dumps(model))
    >>> entry = {"key": "u1", "file": "models/u1.pkl", "n": 0, "model": "..."}
    >>> _ = (export / "models.jsonl").write_text(json.dumps(entry) + "\\n")
    >>> models = riverflink.load_models(export)
    >>> list(models), type(models["u1"]).__name__
    (['u1'], 'LinearRegression')
    """
    root = Path(directory)
    index = root / "models.jsonl"
    if not index.is_file():
        raise FileNotFoundError(
            f"{directory}: no models.jsonl; give a directory that `riverflink export` wrote"
        )
    models = {}
    with open(index, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                entry = json.loads(line)
                with open(root / entry["file"], "rb") as model:
                    key = entry["key"]
                    models[key if not isinstance(key, list) else tuple(key)] = pickle.load(model)
    return models
