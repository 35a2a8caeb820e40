"""The models of recently seen keys, kept live between records over Flink's map state.

Flink state stays the source of truth: a key not held here is read from it, and every
change reaches it when the write policy says (``WRITE_*``, see
:class:`riverflink.operators.functions.LearnPerKey`). Free of Flink: the map state is anything
with ``get`` and ``put``, so the policy is tested without a JVM.
"""

from __future__ import annotations

import ast
from collections import OrderedDict

from riverflink.operators.records import Rejected, route_bucket, spread_bucket
from riverflink.state import envelope
from riverflink.state.descriptors import ROUTING_BUCKETS, SPREAD, SPREAD_KEYS

__all__ = [
    "ROLLBACK_BUDGET",
    "ROLLBACK_NOTES",
    "WRITE_AT_CHECKPOINTS",
    "WRITE_EACH_ELEMENT",
    "WRITE_ON_EVICTION",
    "LiveModels",
]

#: Unless every element writes its keys, a key's changes noted for a rollback (see ``_replay``) are
#: folded into a pickled copy of the key after this many, and every key's after this many
#: in all: memory stays bounded (about 300 bytes a note, so at most about 120 MB a worker),
#: and a rollback replays at most 1,024 records. A Hoeffding tree takes 1 to 2 ms to
#: pickle: at 256 and 200,000 the tree run at parallelism 1 spent about 4 s pickling.
ROLLBACK_NOTES = 1024
ROLLBACK_BUDGET = 400_000

#: When ``LearnPerKey`` writes a key's model to Flink state (see its docstring).
WRITE_EACH_ELEMENT = "element"
WRITE_AT_CHECKPOINTS = "checkpoint"
WRITE_ON_EVICTION = "eviction"


_UNREAD = object()  # a key not read ahead


def _canonical(spec: str) -> str:
    """Specs that differ only in spacing are the same spec."""
    try:
        return ast.dump(ast.parse(spec.strip(), mode="eval"))
    except SyntaxError:
        return spec.strip()


class LiveModels:
    """Live keys of one learning operator instance, and when each reaches Flink state.

    ``state``: the instance's map state (key id -> envelope). ``restored``: whether
    Flink state may hold keys this instance did not write (a restore or a restart);
    otherwise a key never seen here is new, and its read is skipped. ``any_spec``:
    keep a restored key whatever model it was learned with (new keys start from init
    models); otherwise a key learned with another ``--model`` stops the job.

    ``read_many``: ``(state, key_ids) -> {key_id: value or None}``, reading many keys of
    the current bucket at once (the worker's ``riverflink.accel.state_prefetch``), used by
    :meth:`prefetch`; without it each key is read when its record comes.
    """

    def __init__(
        self,
        state,
        *,
        model_spec: str,
        routing: str = SPREAD,
        ttl_seconds: float | None = None,
        live_keys: int = 10_000,
        writes: str = WRITE_EACH_ELEMENT,
        restored: bool = True,
        any_spec: bool = False,
        read_many=None,
    ):
        self.state = state
        self.read_many = read_many
        # Keys of the current element read ahead by ``prefetch``: each is used once, by the
        # key's first lookup in this element, and all are dropped as the element ends.
        self.prefetched: dict = {}
        self.any_spec = any_spec  # new keys start from init models: a restore keeps every key
        self.model_spec = model_spec
        self.routing = routing
        self.ttl_seconds = ttl_seconds
        self.live_keys = live_keys
        self.writes = writes
        self.write_through = writes == WRITE_EACH_ELEMENT
        self.restored = restored
        self.live: OrderedDict = OrderedDict()
        self.evicted: set = set()
        self._unflushed = 0  # changes noted for rollbacks in keys Flink does not flush
        # Without write-through, keys that left ``live`` while another bucket was Flink's
        # current key, per bucket: written when their bucket is current again (state is
        # written under the current key only), before anything reads it.
        self._unwritten: dict = {}
        self._dirty: dict = {}  # WRITE_AT_CHECKPOINTS: bucket -> {key_id: KeyState} changed
        self._bucket = None
        self._known_specs = {model_spec}
        self._canonical_spec = _canonical(model_spec)

    def write_marked(self, bucket) -> None:
        """The router's checkpoint marker for ``bucket``: write its changed keys now."""
        for key_id, key_state in self._dirty.pop(bucket, {}).items():
            self.state.put(key_id, key_state)

    def check_spec(self, key_state, key) -> envelope.KeyState | None:
        if key_state is None or self.any_spec or key_state.model_spec in self._known_specs:
            return key_state
        if _canonical(key_state.model_spec) != self._canonical_spec:
            raise envelope.StateFormatError(
                f"key {key!r} was learned with model spec {key_state.model_spec!r}, "
                f"but this job runs {self.model_spec!r}. Restore with the same --model, "
                "or start without --restore to train new models."
            )
        self._known_specs.add(key_state.model_spec)
        return key_state

    def lookup(self, record, bucket, now):
        """The key's current state (None for a new or expired key), or Rejected."""
        key_id = record.key_id
        key_state = self.live.get(key_id)
        if key_state is not None:
            self.live.move_to_end(key_id)
        else:
            expected = (
                spread_bucket(record.key, key_id, SPREAD_KEYS)
                if self.routing == SPREAD
                else route_bucket(record.key, key_id, ROUTING_BUCKETS)
            )
            if expected != bucket:
                return Rejected(
                    record.raw,
                    f"key {record.key!r} reached routing bucket {bucket}, not its bucket "
                    f"{expected}: Flink and riverflink read the key differently, so its "
                    "model could be split. Please report this line.",
                )
            if self.restored or key_id in self.evicted:
                stored = self.prefetched.pop(key_id, _UNREAD)
                if stored is _UNREAD:
                    stored = self.state.get(key_id)
                key_state = self.check_spec(stored, record.key)
        return self.unexpired(key_state, now)

    def prefetch(self, key_ids) -> None:
        """Read ahead, all at once, the keys of an element (the current bucket's lines) that
        are not live and may be in Flink state, instead of one round trip per record.

        Flink state holds exactly what a read at each key's first record would find: the
        element writes a key only after its first lookup (which takes the read-ahead value
        out) or as it leaves ``live`` (a live key is never read ahead).
        """
        self.prefetched = {}
        if self.read_many is None:
            return
        restored, live, evicted = self.restored, self.live, self.evicted
        cold = [k for k in dict.fromkeys(key_ids) if k not in live and (restored or k in evicted)]
        if len(cold) > 1:
            self.prefetched = self.read_many(self.state, cold)

    def load(self, key_id: str, now: float):
        """A key's current state, from ``live`` or Flink (None for a gone key)."""
        key_state = self.live.get(key_id)
        if key_state is None:
            key_state = self.check_spec(self.state.get(key_id), key_id)
        return self.unexpired(key_state, now)

    def unexpired(self, key_state, now: float):
        if (
            key_state is not None
            and self.ttl_seconds
            and now - key_state.last_seen > self.ttl_seconds
        ):
            # Expired. Flink's TTL also drops it from the backend, but PyFlink's Python-side
            # state cache can still hand out an expired value, so the envelope decides.
            return None
        return key_state

    def keep(self, key_id: str, key_state: envelope.KeyState, touched: dict) -> None:
        """Keep the key live and mark it for writing to Flink at the end of the element.

        PyFlink holds written map entries in its write cache and pickles each once, at
        the end of the bundle (a checkpoint ends the bundle first). Without
        ``WRITE_EACH_ELEMENT`` a key is written at its bucket's checkpoint marker, or when
        it leaves ``live``.
        """
        if self.write_through:
            touched[key_id] = key_state
        else:
            key_state.__dict__["bucket"] = self._bucket  # not pickled: see envelope.dumps
            if self.writes == WRITE_AT_CHECKPOINTS:
                self._dirty.setdefault(self._bucket, {})[key_id] = key_state
        self.live[key_id] = key_state
        if len(self.live) > self.live_keys:
            evicted, evicted_state = self.live.popitem(last=False)
            if not self.write_through:
                bucket = evicted_state.__dict__["bucket"]
                self._dirty.get(bucket, {}).pop(evicted, None)  # written now or on return
                if bucket == self._bucket:
                    self.state.put(evicted, evicted_state)  # from now on only Flink has it
                else:
                    self._unwritten.setdefault(bucket, {})[evicted] = evicted_state
            elif evicted in touched:  # written now, so a later line of this element reads it
                self.state.put(evicted, touched.pop(evicted))
            if not self.restored:
                self.evicted.add(evicted)

    def enter(self, bucket) -> None:
        """Flink's current key is now ``bucket``: write its keys that wait for that."""
        self._bucket = bucket
        self.prefetched = {}
        waiting = self._unwritten.pop(bucket, None)
        if waiting:
            for key_id, key_state in waiting.items():
                self.state.put(key_id, key_state)

    def note(self, key_state: envelope.KeyState, change) -> None:
        """Note a change for a rollback (the learning function replays the notes),
        bounded where Flink does not flush the key."""
        noted = key_state.remember(change)
        if self.write_through:
            return  # Flink's flush at each bundle's end starts the key's notes anew
        self._unflushed += 1
        if noted >= ROLLBACK_NOTES:
            key_state.mark_flushed()
            self._unflushed -= noted
        elif self._unflushed > ROLLBACK_BUDGET:
            for live_state in self.live.values():
                if live_state.__dict__.get("since_flush"):
                    live_state.mark_flushed()
            self._unflushed = 0
