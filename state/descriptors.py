"""Flink state descriptors: the names savepoints are keyed by.

Flink keys riverflink's state by *routing bucket*, not by the user's key: the
job extracts each line's key in Java and sends the line to bucket
``MOD(HASH_CODE(key text), ROUTING_BUCKETS)``, so a line crosses into Python
once and lines of many keys can cross together. Each bucket holds a map from
key (its ``key_id``) to that key's versioned envelope.

The state name and the bucket count are part of every checkpoint and savepoint:
changing either orphans every stored model. The name's ``-v2`` changes only
when this Flink-side layout changes (the envelope carries its own version);
``-v1`` was one value state per key, read by no current release.
"""

from __future__ import annotations

from pyflink.common import Types
from pyflink.common.time import Time
from pyflink.datastream.state import MapStateDescriptor, StateTtlConfig

__all__ = [
    "KEY_STATE_NAME",
    "LABEL_TIMERS_NAME",
    "OLD_STATE_NAMES",
    "ROUTING_BUCKETS",
    "key_state_descriptor",
    "label_timers_descriptor",
]

KEY_STATE_NAME = "riverflink-models-v2"
LABEL_TIMERS_NAME = "riverflink-label-timers-v1"
OLD_STATE_NAMES = ("riverflink-key-state-v1",)

#: Flink keys (buckets) the keys are spread over. Also the most subtasks that get keys.
ROUTING_BUCKETS = 128


def key_state_descriptor(*, ttl_seconds: float | None = None) -> MapStateDescriptor:
    """Per bucket: key_id -> ``KeyState``; with ``ttl_seconds``, idle keys expire one by one.

    The map holds Python objects; PyFlink keeps written entries in a write cache and
    pickles each (as the versioned envelope, see ``KeyState.__reduce__``) once when it
    flushes to Flink: at the end of each bundle and before every checkpoint.
    """
    descriptor = MapStateDescriptor(KEY_STATE_NAME, Types.STRING(), Types.PICKLED_BYTE_ARRAY())
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
