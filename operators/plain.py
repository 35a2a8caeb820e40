"""The per-key learning over a plain dict of keys, without Flink (``riverflink.replay``).

Each line goes through exactly the steps the learning operator takes
(:class:`riverflink.operators.functions.LearnPerKey`): parse, find the key, refuse or
step, roll back a key whose model raised. What Flink does with timers and its state
TTL happens here when a key is next touched, which changes no output line: an expired
pending prediction only makes its late label a rejected line, either way.
"""

from __future__ import annotations

import time

from riverflink.operators.learner import OnlineLearner
from riverflink.operators.live_models import ROLLBACK_NOTES
from riverflink.operators.records import Fields, Rejected, parse_line
from riverflink.state import envelope

__all__ = ["PlainKeys"]


class PlainKeys:
    """Every key's state in a dict, advanced line by line.

    >>> keys = PlainKeys(OnlineLearner(model_spec="linear_model.LinearRegression()"))
    >>> [item.to_json(True) for item in keys.feed(b'{"key": "a", "x": 1.0, "y": 2.0}')]
    ['{"kind": "prediction", "key": "a", "id": null, "y_pred": 0.0, "y_true": 2.0, "n": 0}']
    >>> [item.to_json(True) for item in keys.feed(b'{"key": "a", "x": "?"}')]
    ['{"kind": "rejected", "raw": "{\\\\"key\\\\": \\\\"a\\\\", \\\\"x\\\\": \\\\"?\\\\"}", ...}']
    """

    def __init__(
        self,
        learner: OnlineLearner,
        fields: Fields | None = None,
        *,
        state_ttl: float | None = None,
        clock=time.time,
    ):
        self.learner = learner
        self.fields = learner.fields_for(fields)
        self.state_ttl = state_ttl
        self.clock = clock
        self.keys: dict = {}  # key_id -> KeyState

    def feed(self, line: str | bytes) -> list:
        """The outputs of one line, in order: predictions, alerts, outcomes, rejections."""
        record = parse_line(line, self.fields)
        if record is None:
            return []
        if isinstance(record, Rejected):
            return [record]
        now = self.clock()
        key_state = self._current(record.key_id, now)
        refused = self.learner.refuse(key_state, record)
        if refused is not None:
            return [refused]
        new_state, outputs = self.learner.step(key_state, record, now)
        if new_state is not None:
            new_state.last_seen = now
            if new_state.remember((line, now)) >= ROLLBACK_NOTES:
                new_state.mark_flushed()  # a rollback replays at most this many lines
            self.keys[record.key_id] = new_state
        elif key_state is not None:
            # The model raised on this line and may be half-updated: rebuild the key.
            self.keys[record.key_id] = envelope.rollback(key_state, self._again)
        return outputs

    def _current(self, key_id: str, now: float):
        """The key's state (None: new, or gone after the state TTL), its labels that
        waited past the label TTL dropped, as Flink's timer would have."""
        key_state = self.keys.get(key_id)
        if key_state is None:
            return None
        if self.state_ttl and now - key_state.last_seen > self.state_ttl:
            del self.keys[key_id]
            return None
        if key_state.expiry_timer is not None and key_state.expiry_timer <= now * 1000:
            self.learner.expire(key_state, now)
        return key_state

    def _again(self, key_state, change):
        line, now = change
        new_state, _ = self.learner.step(key_state, parse_line(line, self.fields), now)
        return new_state
