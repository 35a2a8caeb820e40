"""The models of recently seen keys, kept live between records over Flink's map state.

Flink state stays the source of truth: every change reaches it when the write policy
says (``WRITE_*``, see :class:`riverflink.operators.functions.LearnPerKey`). Keys that leave
the live models are kept pickled (their envelope, exactly the bytes Flink holds) up to a
memory budget, so that a key coming back is unpickled in the worker instead of read from
Flink; a key held nowhere is read from Flink state. Free of Flink: the map state is
anything with ``get`` and ``put``, so the policy is tested without a JVM.
"""

from __future__ import annotations

import ast
from collections import OrderedDict

import lz4.block

from riverflink.operators.records import Rejected, route_bucket, spread_bucket
from riverflink.state import envelope
from riverflink.state.descriptors import ROUTING_BUCKETS, SPREAD, SPREAD_KEYS

__all__ = [
    "ROLLBACK_BUDGET",
    "PICKLED_ENTRY",
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


#: What a pickled key costs the worker beyond its compressed envelope's length: the key id,
#: the bytes object and the entry in an ordered dict (about 190 bytes for ids like "k123456").
PICKLED_ENTRY = 200

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

    ``pickled_bytes``: the memory for keys that left ``live``, kept as their envelope (the
    bytes Flink holds for them), least recently used dropped first; 0 keeps none.
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
        pickled_bytes: int = 0,
    ):
        self.state = state
        # Keys not live, as their current envelope (what Flink holds, or gets at their
        # bucket's turn), least recently used first. A key is never live and here at once.
        # Each compressed with LZ4 against the first envelope kept: keys of one model share
        # most of their bytes (class and attribute names, the header).
        self.pickled: OrderedDict = OrderedDict()
        self.pickled_budget = pickled_bytes
        self.pickled_size = 0
        self._shared: bytes | None = None
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
            self._written(key_state)
            # As its envelope: PyFlink keeps what is written in its own caches well after
            # the key left ``live``, and an envelope is a tenth of a live model's memory.
            self.state.put(key_id, envelope.sealed(key_state))

    def _written(self, key_state: envelope.KeyState) -> None:
        """The key's notes for a rollback are about to end (it goes to Flink state): they
        no longer count towards ``ROLLBACK_BUDGET``."""
        if not self.write_through:
            self._unflushed = max(
                0, self._unflushed - len(key_state.__dict__.get("since_flush") or ())
            )

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
                key_state = self._unpickled(key_id)
                if key_state is None:
                    stored = self.prefetched.pop(key_id, _UNREAD)
                    if stored is _UNREAD:
                        stored = self.state.get(key_id)
                    key_state = self.check_spec(envelope.opened(stored), record.key)
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
        restored, live, evicted, pickled = self.restored, self.live, self.evicted, self.pickled
        cold = [
            k
            for k in dict.fromkeys(key_ids)
            if k not in live and k not in pickled and (restored or k in evicted)
        ]
        if len(cold) > 1:
            self.prefetched = self.read_many(self.state, cold)

    def load(self, key_id: str, now: float):
        """A key's current state, from ``live`` or Flink (None for a gone key)."""
        key_state = self.live.get(key_id)
        if key_state is None:
            key_state = self._unpickled(key_id)
        if key_state is None:
            key_state = self.check_spec(envelope.opened(self.state.get(key_id)), key_id)
        return self.unexpired(key_state, now)

    def _unpickled(self, key_id: str):
        """The key from ``pickled`` (taken out: it is about to be live), or None."""
        if not self.pickled:
            return None
        packed = self.pickled.pop(key_id, None)
        if packed is None:
            return None
        self.pickled_size -= len(packed) + PICKLED_ENTRY
        blob = lz4.block.decompress(packed, dict=self._shared)
        return self.check_spec(envelope.opened(envelope.Sealed(blob)), key_id)

    def pickled_envelope(self, key_id: str) -> bytes | None:
        """The envelope kept for a key that left ``live`` (None if none is)."""
        packed = self.pickled.get(key_id)
        return None if packed is None else lz4.block.decompress(packed, dict=self._shared)

    def _keep_pickled(self, key_id: str, blob: bytes | None) -> None:
        """Keep a key that left ``live`` as its current envelope, within the budget."""
        if blob is None or not self.pickled_budget:
            return
        if self._shared is None:
            self._shared = bytes(blob)
        packed = lz4.block.compress(blob, dict=self._shared)
        self.pickled[key_id] = packed
        self.pickled_size += len(packed) + PICKLED_ENTRY
        while self.pickled_size > self.pickled_budget:
            _, dropped = self.pickled.popitem(last=False)
            self.pickled_size -= len(dropped) + PICKLED_ENTRY

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
            self._evict(touched)

    def _evict(self, touched: dict) -> None:
        """The least recently used key leaves ``live``: written to Flink state if Flink does
        not hold its last change (now, or at its bucket's turn), and kept pickled."""
        evicted, evicted_state = self.live.popitem(last=False)
        if not self.restored:
            self.evicted.add(evicted)
        bucket = self._bucket
        if self.write_through:  # written now, so a later line of this element reads it
            write = touched.pop(evicted, None) is not None
        else:
            bucket = evicted_state.__dict__["bucket"]
            write = (
                self.writes == WRITE_ON_EVICTION
                or self._dirty.get(bucket, {}).pop(evicted, _UNREAD) is not _UNREAD
            )  # else written at its bucket's last checkpoint marker
        if not write and not self.pickled_budget:
            return
        self._written(evicted_state)
        sealed = envelope.sealed(evicted_state)  # its envelope, made now unless current
        if write and bucket == self._bucket:
            self.state.put(evicted, sealed)
        elif write:
            self._unwritten.setdefault(bucket, {})[evicted] = sealed
        self._keep_pickled(evicted, sealed.blob)

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
