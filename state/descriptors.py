"""Flink state descriptors: the names savepoints are keyed by.

Flink keys riverflink's state by *routing bucket*, not by the user's key: the
job extracts each line's key in Java and sends the line to one of
``ROUTING_BUCKETS`` buckets, so a line crosses into Python once and lines of
many keys can cross together. Each bucket holds a map from key (its
``key_id``) to that key's versioned envelope.

How keys map to buckets (the *routing*) is part of the layout, and so of every
checkpoint and savepoint:

- ``spread`` (state ``riverflink-models-v3``): the key text's Java hash, mixed
  (MurmurHash3's finalizer), picks one of 128 buckets, and each bucket is the
  Flink key ``SPREAD_KEYS[i]``, which Flink puts in key group ``i``: every
  bucket has a key group of its own, so subtasks get equal shares of buckets,
  and ids that differ in a digit (``user-17``, ``user-18``) spread over all of
  them.
- ``hash`` (state ``riverflink-models-v2``, riverflink before the spread, and
  Flink SQL's routing where no JDK is installed): ``MOD(HASH_CODE(key text),
  128)``, Flink key = bucket. Sequential ids fill few buckets, and several
  buckets share key groups, so subtasks can get very unequal shares. Still
  read and written: a job restored from such state keeps routing this way.

Changing the routing of stored state orphans every model, so it never
changes under a running lineage. ``-v1`` was one value state per key, read by
no current release.
"""

from __future__ import annotations

from pyflink.common import Types
from pyflink.common.time import Time
from pyflink.datastream.state import MapStateDescriptor, StateTtlConfig

__all__ = [
    "HASH",
    "HASH_STATE_NAME",
    "KEY_STATE_NAME",
    "ROUTINGS",
    "SPREAD",
    "SPREAD_KEYS",
    "LABEL_TIMERS_NAME",
    "OLD_STATE_NAMES",
    "ROUTING_BUCKETS",
    "key_state_descriptor",
    "label_timers_descriptor",
]

#: The routings (see above), and the model state of each.
SPREAD, HASH = "spread", "hash"
KEY_STATE_NAME = "riverflink-models-v3"
HASH_STATE_NAME = "riverflink-models-v2"
ROUTINGS = {SPREAD: KEY_STATE_NAME, HASH: HASH_STATE_NAME}
LABEL_TIMERS_NAME = "riverflink-label-timers-v1"
OLD_STATE_NAMES = ("riverflink-key-state-v1",)

#: Flink keys (buckets) the keys are spread over. Also the most subtasks that get keys.
ROUTING_BUCKETS = 128

#: ``spread`` routing: the Flink key of bucket ``i``, the smallest integer that Flink
#: (``KeyGroupRangeAssignment``, keys as PyFlink's ``Row(bucket)``, 128 key groups) puts
#: in key group ``i``. Fixed forever: stored models are keyed by these numbers. A test
#: checks them against the installed Flink.
SPREAD_KEYS = (
    250, 57, 89, 134, 39, 19, 220, 235, 295, 91, 136, 72, 23, 325, 73, 283,
    299, 4, 195, 81, 230, 43, 36, 201, 95, 475, 42, 65, 40, 30, 49, 31,
    13, 0, 87, 152, 157, 11, 332, 150, 55, 66, 12, 69, 1, 10, 138, 111,
    238, 121, 362, 214, 348, 15, 194, 41, 16, 14, 137, 191, 116, 32, 37, 457,
    22, 60, 53, 272, 47, 275, 212, 50, 239, 46, 141, 341, 280, 338, 107, 179,
    8, 35, 176, 33, 21, 180, 923, 145, 44, 80, 143, 78, 84, 151, 132, 331,
    113, 2, 306, 117, 119, 290, 62, 102, 3, 287, 59, 17, 79, 18, 273, 573,
    101, 20, 307, 311, 24, 399, 52, 9, 29, 265, 114, 172, 25, 6, 67, 85,
)  # fmt: skip


def key_state_descriptor(
    *, routing: str = SPREAD, ttl_seconds: float | None = None, raw: bool = False
) -> MapStateDescriptor:
    """Per bucket: key_id -> ``KeyState``; with ``ttl_seconds``, idle keys expire one by one;
    ``raw``: the values as the bytes of their pickles.

    The map holds Python objects; PyFlink keeps written entries in a write cache and
    pickles each (as the versioned envelope, see ``KeyState.__reduce__``) once when it
    flushes to Flink: at the end of each bundle and before every checkpoint.
    """
    # raw: the same state as the pickles' bytes, unpickled by the reader (Flink stores both
    # as a byte array): ``riverflink export`` reads them so, ten times faster than PyFlink's
    # own unpickling of each value.
    values = Types.PRIMITIVE_ARRAY(Types.BYTE()) if raw else Types.PICKLED_BYTE_ARRAY()
    descriptor = MapStateDescriptor(ROUTINGS[routing], Types.STRING(), values)
    if ttl_seconds:
        ttl = (
            StateTtlConfig.new_builder(Time.milliseconds(int(ttl_seconds * 1000)))
            .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
            .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
            .build()
        )
        descriptor.enable_time_to_live(ttl)
    return descriptor


def label_timers_descriptor() -> MapStateDescriptor:
    """Per bucket: timer time (epoch ms) -> key_ids whose pending labels to check then.

    A Flink timer knows only its bucket and time; this map says which keys it is for.
    Each key has at most one entry (``KeyState.expiry_timer``); entries go when they fire.
    """
    return MapStateDescriptor(LABEL_TIMERS_NAME, Types.LONG(), Types.PICKLED_BYTE_ARRAY())
