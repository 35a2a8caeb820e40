"""What an output's committed part files hold, kept in a few bytes a line for the summary.

The end-of-run summary of a run of 2,000,000 records over 1,000,000 keys reads 2,000,000
prediction lines. Kept as Python tuples (a labeled prediction's ``(n, y_true, y_pred)``
and ``(n, score)``) and as a dict of lists per key of each part file, they took 1.9 GB,
about half of the whole job's budget of 4 GB. Here each part file becomes arrays:

- every key met is numbered once for the whole output (:class:`KeyTable`, about 30
  bytes a key), whichever files it is in;
- every value of ``y_true`` and ``y_pred`` is a code (:class:`ValueTable`): the number
  of a distinct label (``True``, ``"cat"``, ``3``...), or :data:`FLOAT` for a float,
  which stays a float in an array of its own (:class:`Codes`);
- a prediction line is then its key's number, its ``n`` and its two codes: about 9
  bytes for a classifier's, 25 for a regressor's (two floats).

Values read back from these arrays are the values read from the files: floats bit for
bit, the other values the same objects or equal ones of the same type (a NaN is kept as
the very object read, as River's confusion matrix tells NaNs apart by identity).
"""

from __future__ import annotations

import json
import re
from array import array
from collections import Counter
from dataclasses import dataclass
from itertools import islice

import numpy as np

from riverflink.results.keys import KeyTable

__all__ = [
    "FLOAT",
    "AlertPart",
    "Codes",
    "KeyTable",
    "OutcomePart",
    "PredictionPart",
    "Tables",
    "ValueTable",
    "narrow",
    "read_part",
    "reason_group",
]

#: The code of a value that is a float and a number (not NaN): its value is in the floats.
FLOAT = 0
_NONE, _TRUE, _FALSE = 1, 2, 3


def reason_group(error: str) -> str:
    """A rejection reason without its particulars: what to count rejected lines by.

    >>> reason_group("invalid JSON: Expecting value: line 1 column 1 (char 0)")
    'invalid JSON'
    >>> reason_group("key field 'user' is missing or null")
    'key field … is missing or null'
    >>> reason_group("no pending prediction for id 9 of key 'a': it was never predicted")
    'no pending prediction for id … of key …'
    """
    head = error.split(": ", 1)[0]
    head = re.sub(r"'[^']*'|\"[^\"]*\"|(?<![\w-])-?\d+(\.\d+)?\b", "…", head)
    return head.strip()[:80]


class ValueTable:
    """The distinct values of ``y_true`` and ``y_pred`` an output holds, numbered: codes.

    A float that is a number has code :data:`FLOAT` and is kept as itself beside its code
    (a regressor's values are nearly all distinct); ``None``, ``True`` and ``False`` have
    codes of their own; a string or an integer has one code for all its occurrences, a
    NaN one per object (River tells NaNs apart by identity), and a value that is no key of
    a dict (a list, a dict) one per occurrence.

    >>> table, floats = ValueTable(), array("d")
    >>> [table.encode(v, floats) for v in (True, "cat", 1, 1.5, "cat", None, 2.5)]
    [2, 4, 5, 0, 4, 1, 0]
    >>> floats.tolist(), table.values[5]
    ([1.5, 2.5], 1)
    """

    def __init__(self) -> None:
        self.values: list = [float, None, True, False]  # code -> value (FLOAT: none)
        self._strs: dict = {}
        self._ints: dict = {}
        self._nans: dict = {}  # id -> code of each NaN object met (kept alive in values)

    def encode(self, value, floats: array) -> int:
        """``value``'s code; a float is appended to ``floats``."""
        if value is True:
            return _TRUE
        if value is False:
            return _FALSE
        if value is None:
            return _NONE
        cls = value.__class__
        if cls is float:
            if value == value:
                floats.append(value)
                return FLOAT
            table, index = self._nans, id(value)
        elif cls is str:
            table, index = self._strs, value
        elif cls is int:
            table, index = self._ints, value
        else:  # a list or a dict: one code per occurrence
            self.values.append(value)
            return len(self.values) - 1
        code = table.get(index)
        if code is None:
            code = table[index] = len(self.values)
            self.values.append(value)
        return code

    def flags(self, test) -> np.ndarray:
        """``test(value)`` of every code's value, as an array indexed by code; a float
        (:data:`FLOAT`) is tested as ``1.5``."""
        return np.fromiter(
            (test(1.5 if code == FLOAT else value) for code, value in enumerate(self.values)),
            bool,
            len(self.values),
        )


@dataclass
class Tables:
    """What the part files of one output share: its keys, values, ids and feature names."""

    keys: KeyTable
    values: ValueTable
    ids: dict  # JSON text -> number, of the ids that are not integers (see id_code)
    features: dict  # (type, feature) -> number (from 1; 0: the error's drift)
    feature_names: list  # number -> feature name

    @classmethod
    def new(cls) -> Tables:
        return cls(KeyTable(), ValueTable(), {}, {}, [None])

    def id_code(self, ident) -> int:
        """One integer per id, told apart as its JSON text: an integer id ``i`` (the
        usual) is ``2 * i``, any other id ``2 * k + 1``, ``k`` numbering its JSON text.

        >>> tables = Tables.new()
        >>> [tables.id_code(i) for i in (7, "7", True, -3, "7", 2**70)]
        [14, 1, 3, -6, 1, 5]
        """
        if ident.__class__ is int and -(2**61) <= ident < 2**61:
            return 2 * ident
        text = json.dumps(ident)
        number = self.ids.get(text)
        if number is None:
            number = self.ids[text] = len(self.ids)
        return 2 * number + 1


@dataclass
class Codes:
    """A column of values: a code per row (:class:`ValueTable`) and, where the code is
    :data:`FLOAT`, the row's float in ``floats`` (aligned with the codes; None if no row
    holds a float)."""

    codes: np.ndarray
    floats: np.ndarray | None

    @classmethod
    def of(cls, codes: array, floats: array) -> Codes:
        """From the arrays a part file was read into (the floats one per FLOAT code)."""
        codes = narrow(codes)
        if not floats:
            return cls(codes, None)
        aligned = np.zeros(len(codes))
        aligned[codes == FLOAT] = np.asarray(floats)
        return cls(codes, aligned)

    @classmethod
    def joined(cls, columns: list) -> Codes:
        """The columns one after the other."""
        codes = _concatenate([c.codes for c in columns], np.uint8)
        if all(c.floats is None for c in columns):
            return cls(codes, None)
        floats = [np.zeros(len(c.codes)) if c.floats is None else c.floats for c in columns]
        return cls(codes, np.concatenate(floats))

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, rows) -> Codes:
        """The rows ``rows`` (indices or a mask), in that order."""
        return Codes(self.codes[rows], None if self.floats is None else self.floats[rows])

    def decoder(self, table: ValueTable):
        """A function from a row to its value, as read from the file."""
        codes, values = memoryview(self.codes), table.values
        if self.floats is None:
            return lambda row: values[codes[row]]
        floats = memoryview(self.floats)
        return lambda row: floats[row] if codes[row] == FLOAT else values[codes[row]]


@dataclass
class PredictionPart:
    """One committed file of predictions: a row per line, labeled ones and the others."""

    lines: int
    pseudo: int  # predictions learned as pseudo-labels (--pseudo-label)
    numbers_only: bool  # every label a number
    scored: bool  # some labeled prediction a float
    numbers: np.ndarray  # the key's number, per line
    ns: np.ndarray  # n, per line
    labeled: np.ndarray  # the lines with a label
    y_true: Codes  # per labeled line
    y_pred: Codes  # per labeled line
    waiting: np.ndarray  # the lines without a label but with an id: they await a label
    waiting_ids: np.ndarray  # their ids (Tables.id_code)


def read_predictions(rows, tables: Tables) -> PredictionPart:
    """The prediction lines ``rows`` of one part file, in columns."""
    keys, encode, id_code = tables.keys, tables.values.encode, tables.id_code
    canonical: dict = {}  # keys neither strings nor integers, as first met in this file
    numbers, ns, labeled, waiting, waiting_ids = (array(t) for t in "IqIIq")
    true_codes, true_floats = array("I"), array("d")
    pred_codes, pred_floats = array("I"), array("d")
    numbers_only, scored, lines, pseudo = True, False, 0, 0
    for chunk in _chunks(rows):
        numbers.extend(keys.numbers([row["key"] for row in chunk], canonical))
        # Tight loop, locals only: the end-of-run summary of a big run reads every line.
        for row in chunk:
            ns.append(row["n"])
            y_true = row["y_true"]
            if y_true is not None:
                y_pred = row["y_pred"]
                labeled.append(lines)
                true_codes.append(encode(y_true, true_floats))
                pred_codes.append(encode(y_pred, pred_floats))
                if numbers_only and not _is_number(y_true):
                    numbers_only = False
                if y_pred.__class__ is float:
                    scored = True
            elif row["id"] is not None:
                waiting.append(lines)
                waiting_ids.append(id_code(row["id"]))
            elif "pseudo" in row:
                pseudo += 1
            lines += 1
    return PredictionPart(
        lines,
        pseudo,
        numbers_only,
        scored,
        np.asarray(numbers),
        narrow(ns),
        narrow(labeled),
        Codes.of(true_codes, true_floats),
        Codes.of(pred_codes, pred_floats),
        narrow(waiting),
        np.asarray(waiting_ids),
    )


@dataclass
class OutcomePart:
    """One committed file of outcomes: the delayed labels learned, a row per line."""

    numbers: np.ndarray  # the key's number
    ids: np.ndarray  # the id the label came with (Tables.id_code)
    y_true: Codes
    y_pred: Codes  # the prediction the label met, as the outcome line tells it


def read_outcomes(rows, tables: Tables) -> OutcomePart:
    keys, encode, id_code = tables.keys, tables.values.encode, tables.id_code
    numbers, ids = array("I"), array("q")
    true_codes, true_floats = array("I"), array("d")
    pred_codes, pred_floats = array("I"), array("d")
    for chunk in _chunks(rows):
        numbers.extend(keys.numbers([row["key"] for row in chunk]))
        for row in chunk:
            ids.append(id_code(row["id"]))
            true_codes.append(encode(row["y_true"], true_floats))
            pred_codes.append(encode(row["y_pred"], pred_floats))
    return OutcomePart(
        np.asarray(numbers),
        np.asarray(ids),
        Codes.of(true_codes, true_floats),
        Codes.of(pred_codes, pred_floats),
    )


@dataclass
class AlertPart:
    """One committed file of drift alerts, a row per line."""

    numbers: np.ndarray  # the key's number
    ns: np.ndarray  # n of the alert
    features: np.ndarray  # the drifting feature's number (Tables); 0: the error drifted


def read_alerts(rows, tables: Tables) -> AlertPart:
    keys, features, names = tables.keys, tables.features, tables.feature_names
    numbers, ns, codes = array("I"), array("q"), array("I")
    for chunk in _chunks(rows):
        numbers.extend(keys.numbers([row["key"] for row in chunk]))
        for row in chunk:
            ns.append(row["n"])
            feature = row.get("feature")
            if feature is None:
                codes.append(0)
                continue
            code = features.get((feature.__class__, feature))  # --feature-drift
            if code is None:
                code = features[feature.__class__, feature] = len(names)
                names.append(feature)
            codes.append(code)
    return AlertPart(np.asarray(numbers), narrow(ns), narrow(codes))


def read_rejected(rows, tables: Tables) -> Counter:
    """Rejected lines by reason (:func:`reason_group`), in the order reasons were met."""
    return Counter(reason_group(row.get("error", "")) for row in rows)


def read_part(kind: str, rows, tables: Tables):
    """The rows of one committed part file of ``kind``, in columns."""
    return _READERS[kind](rows, tables)


_READERS = {
    "predictions": read_predictions,
    "outcomes": read_outcomes,
    "alerts": read_alerts,
    "rejected": read_rejected,
}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def narrow(values) -> np.ndarray:
    """Integers (an ``array.array`` or a numpy array) as numpy's narrowest integer type
    that holds them all.

    >>> [narrow(array("q", v)).dtype.name for v in ([], [0, 255], [0, 256], [-1, 7])]
    ['uint8', 'uint8', 'uint16', 'int16']
    """
    numbers = np.asarray(values)
    if not len(numbers):
        return numbers.astype(np.uint8)
    low, high = numbers.min(), numbers.max()
    return numbers.astype(np.result_type(np.min_scalar_type(low), np.min_scalar_type(high)))


def _chunks(rows, size: int = 10_000):
    """``rows`` in lists of ``size``: keys are numbered a list at a time."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def _concatenate(arrays: list, empty_type) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, empty_type)
