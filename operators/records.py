"""Turning one input line into a record, or into a reason it was rejected.

Lines reach Python as ``str`` whose characters are the raw bytes (the Flink
sources read ISO-8859-1, which maps every byte to one character). Decoding
UTF-8 here, strictly, is what lets riverflink reject invalid UTF-8 instead of
silently replacing it.
"""

from __future__ import annotations

import json
import math
import operator
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from math import isfinite
from typing import Any

import orjson

from riverflink.operators.schema import schema_error

__all__ = [
    "Fields",
    "Record",
    "Rejected",
    "is_blank",
    "parse_line",
    "route_bucket",
    "spread_bucket",
    "with_imputed",
    "RAW_LIMIT",
]

#: Rejected lines are quoted up to this many characters.
RAW_LIMIT = 1000

_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Fields:
    """Which fields of a record play which role."""

    key: str = "key"
    id: str = "id"
    target: str = "y"
    features: tuple | None = None  # None: every other field, in input order
    numeric_target: bool = False  # regressors need a number as label
    schema: str | None = None  # --schema: a JSON Schema's text, every record must satisfy it
    imputed: tuple = ()  # features the model's StatImputer fills in: null ones kept as None

    @cached_property
    def plain(self) -> bool:
        """Whether records may be read by the one-pass path (see ``_plain_record``): no
        schema, no feature list, no imputed features, three distinct role fields."""
        return (
            self.schema is None
            and self.features is None
            and not self.imputed
            and len({self.key, self.id, self.target}) == 3
        )


@dataclass
class Record:
    """A valid record. ``key_id`` identifies the key's model: JSON text, so 7 and "7" differ.

    A number key is identified as written in decimal (``100.0`` and ``1e2`` are two keys),
    the way Flink's JSON functions see it when they route the line (see ``route_bucket``).
    """

    key: Any
    key_id: str
    id: Any
    x: dict
    y: Any  # None when unlabeled
    raw: str = field(default="", repr=False, compare=False)  # quoted if the model rejects it

    @property
    def label_only(self) -> bool:
        """A late label: key, id and label but no feature (null features count as absent)."""
        return self.y is not None and not self.x


@dataclass(frozen=True)
class Rejected:
    """A line that changed nothing, and why."""

    raw: str
    error: str

    def to_json(self, kind: bool = False) -> str:
        out = {"kind": "rejected"} if kind else {}
        out.update(raw=self.raw[:RAW_LIMIT], error=self.error)
        return json.dumps(out)


class _BadInput(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _BadInput(f"non-finite number {name} is not allowed")


#: NaN and Infinity literals are refused while decoding; numbers too large for a float
#: (1e999) decode to inf and are refused by _check_finite, which is faster than a
#: per-number hook.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


#: Characters json.dumps escapes in printable ASCII.
_PLAIN = re.compile(r'["\\]')


def _check_finite(value, name: str = "") -> None:
    if value.__class__ is dict:
        for inner_name, inner in value.items():
            cls = inner.__class__
            if cls is float:
                if not isfinite(inner):
                    raise _BadInput(f"number in field {inner_name!r} is out of range (not finite)")
            elif cls is dict or cls is list:
                _check_finite(inner, inner_name)
    elif isinstance(value, list):
        for inner in value:
            if inner.__class__ is float and not math.isfinite(inner):
                raise _BadInput(f"number in field {name!r} is out of range (not finite)")
            if isinstance(inner, (dict, list)):
                _check_finite(inner, name)


def _decode(raw: str | bytes) -> tuple:
    """(text, error): the line as UTF-8 text, or an error for invalid bytes."""
    if raw.__class__ is str and raw.isascii():  # most lines: ASCII reads the same either way
        return raw, None
    if isinstance(raw, str):
        try:
            data = raw.encode("latin-1")
        except UnicodeEncodeError:  # already decoded text (not from riverflink's sources)
            return raw, None
    else:
        data = raw
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        return text, f"invalid UTF-8 at byte {exc.start}: {exc.reason}"


def _text(raw: str | bytes) -> tuple:
    text, error = _decode(raw)
    text = text.rstrip("\r\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, error


def is_blank(raw: str | bytes) -> bool:
    """True for the lines :func:`parse_line` skips."""
    text, error = _text(raw)
    return error is None and not text.strip()


def parse_line(raw: str | bytes, fields: Fields = Fields()) -> Record | Rejected | None:
    """Parse one line; ``None`` for a blank line.

    >>> parse_line('{"key": "a", "id": 1, "x1": 0.5, "y": true}')
    Record(key='a', key_id='"a"', id=1, x={'x1': 0.5}, y=True)
    >>> parse_line('{"key": "a", "x1": NaN}').error
    'non-finite number NaN is not allowed'
    >>> parse_line('   ') is None
    True
    """
    text, error = _text(raw)
    if error:
        return Rejected(text, error)
    if not text.strip():
        return None
    try:
        return _to_record(text, fields)
    except _BadInput as exc:
        return Rejected(text, str(exc))
    except RecursionError:
        return Rejected(text, "JSON nested too deeply")
    except ValueError as exc:  # json.JSONDecodeError
        return Rejected(text, f"invalid JSON: {exc}")


def _to_record(text: str, fields: Fields) -> Record:
    """The record of a non-blank line; raises ``_BadInput`` or ``ValueError``.

    With ``fields.plain``, the line is first decoded by orjson (about four times faster
    than Python's parser) and read by the one-pass path. orjson reads what it accepts as
    Python's parser does, except integers beyond 64 bits, which it reads as floats: the
    one-pass path takes only floats below 2**63 in magnitude, so such a line goes on
    here. Every line orjson refuses (NaN, Infinity, numbers out of a float's range, lone
    surrogates, deep nesting, invalid JSON) or the one-pass path declines is decoded
    again by Python's parser and read by the careful path, which explains what is wrong.
    """
    if fields.plain:
        try:
            obj = orjson.loads(text)
        except ValueError:  # orjson.JSONDecodeError
            obj = None
        if obj.__class__ is dict:
            record = _plain_record(obj, text, fields)
            if record is not None:
                return record
    obj = _DECODER.decode(text)
    if obj.__class__ is dict and fields.plain:
        record = _plain_record(obj, text, fields)
        if record is not None:
            return record
    return _checked_record(obj, text, fields)


#: Integers that ``float()`` takes without overflow, with room to spare.
_INT_BOUND = 1 << 1000

#: Floats the one-pass path takes are below this in magnitude: orjson reads an integer
#: beyond 64 bits as a float at least this large.
_FLOAT_BOUND = 2.0**63

#: Feature types of which one sum tells whether every value is finite and in bounds.
_SUMMED = frozenset((float, bool))
#: Feature types of an ordinary line.
_ORDINARY = frozenset((float, bool, str, int))


def _plain_record(obj: dict, text: str, fields: Fields) -> Record | None:
    """The record of an ordinary line, checked in few steps, or None.

    Ordinary: every value a string, a boolean, a float below 2**63 in magnitude or an
    integer a float can hold, and the key not a float. What this returns is what
    :func:`_checked_record` returns for the same line; anything else (nulls, objects,
    lists, out-of-range numbers, a missing key, a bad label) is left to it, to read or
    to explain.
    """
    x = obj.copy()  # obj stays whole for _checked_record
    key = x.pop(fields.key, None)
    y = x.pop(fields.target, None)
    rid = x.pop(fields.id, None)
    kinds = set(map(type, x.values()))  # JSON decodes to exactly these types, no subclasses
    if kinds <= _SUMMED:  # floats and booleans: one too large makes the sum too large
        if x and not sum(map(abs, x.values())) < _FLOAT_BOUND:  # NaN compares False
            return None
    elif kinds <= _ORDINARY:
        for value in x.values():
            cls = value.__class__
            if cls is float:
                if not abs(value) < _FLOAT_BOUND:
                    return None
            elif cls is int and not -_INT_BOUND < value < _INT_BOUND:
                return None
    else:  # null, object or list features
        return None
    cls = key.__class__
    if cls is not str and cls is not int and cls is not bool:  # None, float, object, list
        return None
    if y is not None:
        cls = y.__class__
        if cls is float:
            if not abs(y) < _FLOAT_BOUND:
                return None
        elif cls is int:
            if not -_INT_BOUND < y < _INT_BOUND:
                return None
        elif cls is bool or cls is str:
            if fields.numeric_target:
                return None
        else:
            return None
    if rid is not None:
        cls = rid.__class__
        if cls is float:
            if not abs(rid) < _FLOAT_BOUND:
                return None
        elif cls is not str and cls is not int and cls is not bool:
            return None
    return Record(
        key=key, key_id=_key_id(key, text, fields), id=rid, x=x, y=y, raw=text[:RAW_LIMIT]
    )


def _checked_record(obj: Any, text: str, fields: Fields) -> Record:
    """The record of any decoded line, checked field by field; raises ``_BadInput`` with
    the first problem found."""
    if obj.__class__ is not dict:
        raise _BadInput(f"a record must be a JSON object, got {type(obj).__name__}")
    _check_finite(obj)
    if fields.schema is not None:
        violation = schema_error(fields.schema, obj)
        if violation is not None:
            raise _BadInput(violation)
    key = obj.get(fields.key)
    if key is None:
        raise _BadInput(f"key field {fields.key!r} is missing or null")
    if not isinstance(key, _SCALARS):
        raise _BadInput(f"key field {fields.key!r} must be a string, number or boolean")
    y = obj.get(fields.target)
    if y is not None:
        if not isinstance(y, _SCALARS):
            raise _BadInput(
                f"target field {fields.target!r} must be a scalar, not a JSON "
                f"{'object' if isinstance(y, dict) else 'list'}"
            )
        if fields.numeric_target and (isinstance(y, (bool, str))):
            raise _BadInput(
                f"target field {fields.target!r} must be a number for a regressor, got {y!r}"
            )
        if isinstance(y, int) and not isinstance(y, bool) and fields.numeric_target:
            y = _checked_int(y, fields.target)
    if fields.features is None:
        roles = (fields.key, fields.id, fields.target)
        names = [name for name in obj if name not in roles]
    else:
        names = [name for name in fields.features if name in obj]
    x = {}
    for name in names:
        value = obj[name]
        cls = value.__class__  # JSON decodes to exactly these types, never subclasses
        if cls is float or cls is str or cls is bool:
            x[name] = value
        elif cls is int:
            x[name] = _checked_int(value, name)
        elif value is not None:  # null: a missing feature, as in River's sparse dicts
            raise _BadInput(
                f"feature {name!r} must be a number, string or boolean, not a JSON "
                f"{'object' if cls is dict else 'list'}"
            )
        elif fields.imputed and name in fields.imputed:
            x[name] = None  # for the imputer, in its place
    if fields.imputed and x and all(value is None for value in x.values()):
        x = {}  # nulls only: no feature (a late label stays one)
    key_id = _key_id(key, text, fields)
    return Record(key=key, key_id=key_id, id=obj.get(fields.id), x=x, y=y, raw=text[:RAW_LIMIT])


def _key_id(key: Any, text: str, fields: Fields) -> str:
    """The key's identity: its JSON text, a float key as written in the line."""
    key_cls = key.__class__
    if key_cls is float:
        return _decimal_text(text, fields.key)
    if key_cls is str and key.isascii() and key.isprintable() and _PLAIN.search(key) is None:
        return f'"{key}"'  # what json.dumps writes for it, without its machinery
    return json.dumps(key)


def with_imputed(x: dict, imputed: tuple) -> dict:
    """``x`` with each feature of ``imputed`` it lacks added as None, last, for the model's
    StatImputer to fill in (null ones are None in their place already, see ``Fields``).

    >>> with_imputed({"b": 1.0}, ("a", "b"))
    {'b': 1.0, 'a': None}
    """
    missing = [name for name in imputed if name not in x]
    return {**x, **dict.fromkeys(missing)} if missing else x


def _decimal_text(text: str, key_field: str) -> str:
    """A float key as Flink's JSON_VALUE spells it: the literal, as a decimal (1e2 -> 1E+2).

    Java's ``BigDecimal.toString`` and Python's ``str(Decimal)`` follow the same rules.
    """
    literal = json.loads(text, parse_float=str)[key_field]
    return str(Decimal(literal))


def route_text(key: Any, key_id: str) -> str:
    """The text Flink routes a key by: ``JSON_VALUE(line, '$.<key field>')``."""
    if isinstance(key, str):
        return key
    if key is True or key is False:
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    return key_id  # a float's key_id is already its decimal text


#: 31**k modulo 2**32, highest power first: the weights of the last code units of a text.
_POWERS = tuple(pow(31, k, 1 << 32) for k in range(255, -1, -1))
#: UTF-16 in this machine's byte order, so that its bytes cast to code units.
_UTF16 = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode()`` (Flink SQL's ``HASH_CODE``), over UTF-16 code units:
    the sum of each unit times 31 to the power of the units after it, modulo 2**32.

    >>> java_string_hash("user-17"), java_string_hash("é-user"), java_string_hash("😀")
    (-147182744, -1874184657, 1772899)
    """
    if text.isascii():
        units = text.encode("ascii")
    else:
        units = memoryview(text.encode(_UTF16, "surrogatepass")).cast("H")
    n = len(units)
    if n <= len(_POWERS):
        h = sum(map(operator.mul, units, _POWERS[len(_POWERS) - n :])) & 0xFFFFFFFF
    else:
        h = 0
        for unit in units:
            h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def route_bucket(key: Any, key_id: str, buckets: int) -> int:
    """The bucket Flink sends a key to: ``MOD(HASH_CODE(text), buckets)``.

    Flink's ``HASH_CODE`` is the absolute value of Java's hash (which stays negative
    only for -2**31), and ``MOD`` keeps the dividend's sign.

    >>> route_bucket("true", '"true"', 128) == route_bucket(True, "true", 128)
    True
    >>> route_bucket("é-user", '"é-user"', 128)  # Java's hash is -1874184657
    81
    """
    h = java_string_hash(route_text(key, key_id))
    if h < 0 and h != -(1 << 31):
        h = -h
    return -(-h % buckets) if h < 0 else h % buckets


def spread_bucket(key: Any, key_id: str, keys) -> int:
    """The bucket of a key under ``spread`` routing: ``keys[i]`` for the key text's mixed hash.

    ``i`` is the low 7 bits of MurmurHash3's 32-bit finalizer applied to Java's hash of the
    key text, so that texts differing in one character land anywhere; ``keys`` is
    ``riverflink.state.descriptors.SPREAD_KEYS``, one Flink key per key group. riverflink's router
    (``RouteLines.spreadIndex``) computes the same.

    >>> spread_bucket("user-17", '"user-17"', range(128))
    84
    >>> spread_bucket("user-18", '"user-18"', range(128))
    110
    """
    h = java_string_hash(route_text(key, key_id)) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return keys[h & (len(keys) - 1)]


def _checked_int(value: int, name: str) -> int:
    try:
        float(value)
    except OverflowError:
        raise _BadInput(f"number in field {name!r} is too large") from None
    return value
