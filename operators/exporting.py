"""``riverflink export``'s Flink function: every key's model out of restored state.

The export job restores a checkpoint or savepoint into an operator with the learning
operator's uid and state, and sends it one element per routing bucket (the Flink key
the models are grouped by). For each, it reads every model of that bucket and writes
each key's River estimator as a pickle of its own, and its index line to the subtask's
part of the index (:data:`INDEX_PARTS`), which the client joins into ``models.jsonl``;
it emits how many keys it wrote. (Sending the index lines through Flink to the client
took 10 s of a 100,000-key export.)
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import pickle

from pyflink.datastream import KeyedProcessFunction, RuntimeContext

from riverflink.operators.results import jsonable
from riverflink.state.descriptors import key_state_descriptor

__all__ = ["INDEX_PARTS", "ExportKeys", "model_file"]

#: The folder, inside the export's directory, of the index parts the subtasks write.
INDEX_PARTS = ".index-parts"


def model_file(key_id: str) -> str:
    """A key's file name in an export: the key's JSON text can be anything, a file name
    cannot.

    >>> model_file('"user-1"')
    'models/5d/5d08e7295b38b57c9e0f0e64.pkl'

    Files are spread over 256 folders by the first two hex digits: the export's workers
    create them at once, and one folder of 100,000 files made them wait for each other.
    """
    digest = hashlib.sha256(key_id.encode("utf-8")).hexdigest()[:24]
    return f"models/{digest[:2]}/{digest}.pkl"


class ExportKeys(KeyedProcessFunction):
    """Writes every key of each bucket it is sent to ``directory``, and their index lines
    to ``directory/INDEX_PARTS/<subtask>.jsonl``; emits how many keys each bucket held.

    ``keys``: key ids (JSON text) to export, or None for every key. ``ttl``: whether the
    state was written with a time-to-live (its serializer differs; the export sees every
    key still in state).
    """

    def __init__(self, directory: str, routing: str, *, keys=None, ttl: bool = False):
        self.directory = directory
        self.routing = routing
        self.keys = None if keys is None else frozenset(keys)
        self.ttl = ttl

    def open(self, runtime_context: RuntimeContext):
        import river

        ttl_seconds = 100 * 365 * 86400 if self.ttl else None  # see every key still kept
        self.state = runtime_context.get_map_state(
            key_state_descriptor(routing=self.routing, ttl_seconds=ttl_seconds, raw=True)
        )
        self.river = river.__version__
        for shard in range(256):
            os.makedirs(os.path.join(self.directory, "models", f"{shard:02x}"), exist_ok=True)
        parts = os.path.join(self.directory, INDEX_PARTS)
        os.makedirs(parts, exist_ok=True)
        subtask = runtime_context.get_index_of_this_subtask()
        attempt = runtime_context.get_attempt_number()
        self.index = open(os.path.join(parts, f"{subtask}-{attempt}.jsonl"), "w", encoding="utf-8")

    def close(self):
        index = getattr(self, "index", None)
        if index is not None:
            index.close()

    def process_element(self, value, ctx):
        # Hundreds of thousands of short-lived objects, none in a cycle: the collector's
        # passes over them would cost more than the export itself.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield from self._export_bucket()
        finally:
            if was_enabled:
                gc.enable()

    def _export_bucket(self):
        lines = []
        for key_id, raw in self.state.items():
            if self.keys is not None and key_id not in self.keys:
                continue
            key_state = pickle.loads(raw)  # the envelope (riverflink.state.envelope)
            name = model_file(key_id)
            path = os.path.join(self.directory, name)
            # A new directory, whose index is written last: no file is renamed into place
            # (a rename per key was most of the time of a large export).
            # One write on a new descriptor: Python's buffered file costs a third more.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                data = memoryview(pickle.dumps(key_state.model, protocol=pickle.HIGHEST_PROTOCOL))
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
            metric = None if key_state.metric is None else jsonable(key_state.metric.get())
            entry = {
                "key": json.loads(key_id),
                "file": name,
                "n": key_state.n,
                "model": key_state.model_spec,
                "metric": metric,
                "river": self.river,
            }
            lines.append(json.dumps(entry, ensure_ascii=False))
        if lines:
            self.index.write("\n".join(lines) + "\n")
            self.index.flush()
        yield str(len(lines))
