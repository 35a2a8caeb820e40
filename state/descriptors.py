"""Flink state descriptors: the names savepoints are keyed by.

The state name ``riverflink-key-state-v1`` is part of every checkpoint and
savepoint; renaming it orphans every stored model. The ``-v1`` follows the
envelope's format version only when the Flink-side layout changes (the
envelope carries its own, finer version).
"""

from __future__ import annotations

from pyflink.common import Types
from pyflink.common.time import Time
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

KEY_STATE_NAME = "riverflink-key-state-v1"


def key_state_descriptor(*, ttl_seconds: float | None = None) -> ValueStateDescriptor:
    """One ``KeyState`` per key; with ``ttl_seconds``, idle keys expire.

    The state holds the Python object; PyFlink caches it between records and pickles it
    (as the versioned envelope, see ``KeyState.__reduce__``) only when it flushes state to
    Flink: at the end of each bundle, before every checkpoint, and on cache eviction.
    """
    descriptor = ValueStateDescriptor(KEY_STATE_NAME, Types.PICKLED_BYTE_ARRAY())
    if ttl_seconds:
        ttl = (
            StateTtlConfig.new_builder(Time.milliseconds(int(ttl_seconds * 1000)))
            .set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)
            .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
            .build()
        )
        descriptor.enable_time_to_live(ttl)
    return descriptor
