"""parse_line: one input line -> Record, Rejected (with a reason) or None."""

from __future__ import annotations

import json

import pytest

from riverflink.operators.records import (
    RAW_LIMIT,
    Fields,
    Record,
    Rejected,
    parse_line,
    route_bucket,
    spread_bucket,
)

DEFAULT_FIELDS = Fields()


def as_source_line(text: str) -> str:
    """What the Flink sources hand over: the UTF-8 bytes, one character per byte."""
    return text.encode("utf-8").decode("latin-1")


def rejected(raw, fields: Fields = DEFAULT_FIELDS) -> Rejected:
    out = parse_line(raw, fields)
    assert isinstance(out, Rejected), out
    assert out.error and out.error.strip()
    return out


def record(raw, fields: Fields = DEFAULT_FIELDS) -> Record:
    out = parse_line(raw, fields)
    assert isinstance(out, Record), out
    return out


# --- valid records ----------------------------------------------------------------------------


def test_a_valid_line_becomes_a_record():
    rec = record('{"key": "a", "id": 3, "x1": 0.5, "x2": "red", "y": true}')
    assert rec.key == "a"
    assert rec.id == 3
    assert rec.x == {"x1": 0.5, "x2": "red"}
    assert rec.y is True


def test_default_features_are_all_other_fields_in_input_order():
    rec = record('{"z": 1, "key": "a", "b": 2, "y": 0, "a": 3, "id": 9, "m": false}')
    assert list(rec.x) == ["z", "b", "a", "m"]
    assert rec.x == {"z": 1, "b": 2, "a": 3, "m": False}


def test_named_features_keep_only_those_and_omit_missing_ones():
    fields = Fields(features=("b", "missing", "a"))
    rec = record('{"key": "a", "a": 1, "b": 2, "c": 3, "y": 1}', fields)
    assert rec.x == {"b": 2, "a": 1}


def test_custom_role_fields():
    fields = Fields(key="user", id="event", target="label")
    rec = record('{"user": "u1", "event": "e7", "label": "spam", "key": 5, "y": 1}', fields)
    assert (rec.key, rec.id, rec.y) == ("u1", "e7", "spam")
    assert rec.x == {"key": 5, "y": 1}


def test_null_features_are_omitted():
    rec = record('{"key": "a", "x1": null, "x2": 1.5}')
    assert rec.x == {"x2": 1.5}


@pytest.mark.parametrize("line", ['{"key": "a", "x": 1}', '{"key": "a", "x": 1, "y": null}'])
def test_missing_or_null_target_is_unlabeled(line):
    assert record(line).y is None


def test_missing_id_is_none():
    assert record('{"key": "a", "x": 1}').id is None


def test_key_id_tells_number_keys_from_string_keys():
    as_number = record('{"key": 7, "x": 1}')
    as_string = record('{"key": "7", "x": 1}')
    assert as_number.key == 7 and as_string.key == "7"
    assert as_number.key_id != as_string.key_id


@pytest.mark.parametrize(
    "key",
    [
        "k1",
        "",
        "with space",
        'a"quote',
        "back\\slash",
        "tab\t",
        "\x7f",
        "\x00",
        "é",
        "\u2028",
        "\U0001f600",
        "/slash",
        "<&>",
    ],
)
def test_string_key_id_is_the_keys_json_text(key):
    # routing, stored state and outputs all name a key by exactly this text
    line = as_source_line(json.dumps({"key": key, "x": 1}, ensure_ascii=False))
    assert record(line).key_id == json.dumps(key)


@pytest.mark.parametrize("line", ["", " ", "\t  ", "\n", "\r\n", "   \r\n"])
def test_blank_lines_are_skipped(line):
    assert parse_line(line) is None


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_line_endings_are_stripped(ending):
    line = '{"key": "a", "x": 1}' + ending
    rec = record(line)
    assert rec.x == {"x": 1}
    assert not rec.raw.endswith(("\r", "\n"))


@pytest.mark.parametrize("as_bytes", [False, True])
def test_non_ascii_utf8_text_passes_through(as_bytes):
    line = '{"key": "café", "ville": "été", "y": "ça"}'
    raw = line.encode("utf-8") if as_bytes else as_source_line(line)
    rec = record(raw)
    assert rec.key == "café"
    assert rec.x == {"ville": "été"}
    assert rec.y == "ça"


def test_numeric_target_accepts_numbers():
    fields = Fields(numeric_target=True)
    assert record('{"key": "a", "y": 2}', fields).y == 2
    assert record('{"key": "a", "y": -2.5e3}', fields).y == -2500.0


def test_a_two_megabyte_valid_line_parses():
    big = "v" * (2 * 1024 * 1024)
    rec = record(json.dumps({"key": "a", "text": big, "y": 1}))
    assert rec.x["text"] == big


# --- rejected lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b'{"key": "a", "x": "\xff"}',
        b'{"key": "a", "x": "\xc3"}',  # truncated two-byte sequence
        b'{"key": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"key": "a"}\xc0\xaf',  # overlong encoding
    ],
)
def test_invalid_utf8_is_rejected(data, as_bytes):
    raw = data if as_bytes else data.decode("latin-1")
    out = rejected(raw)
    assert "UTF-8" in out.error


@pytest.mark.parametrize(
    "line",
    [
        '{"key": "a", "x": 1',
        '{"key": "a",}',
        "{key: 1}",
        "not json",
        '{"key": "a"} trailing',
        "'single'",
    ],
)
def test_invalid_json_is_rejected(line):
    assert "JSON" in rejected(line).error


@pytest.mark.parametrize(
    "line, what",
    [
        ("[1, 2]", "list"),
        ("3.5", "float"),
        ("7", "int"),
        ('"text"', "str"),
        ("true", "bool"),
        ("null", "NoneType"),
    ],
)
def test_a_value_that_is_not_an_object_is_rejected(line, what):
    out = rejected(line)
    assert "object" in out.error and what in out.error


@pytest.mark.parametrize(
    "line",
    ['{"x": 1}', '{"key": null, "x": 1}', '{"key": [1], "x": 1}', '{"key": {"a": 1}, "x": 1}'],
)
def test_missing_null_or_non_scalar_key_is_rejected(line):
    assert "key" in rejected(line).error


def test_custom_key_field_is_required():
    out = rejected('{"key": "a", "x": 1}', Fields(key="user"))
    assert "user" in out.error


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize(
    "template",
    [
        '{{"key": "a", "x": {}}}',
        '{{"key": "a", "y": {}}}',
        '{{"key": "a", "id": {}}}',
        '{{"key": {}}}',
        '{{"key": "a", "other": [1, {}]}}',
        '{{"key": "a", "o": {{"d": {}}}}}',
    ],
)
def test_non_finite_numbers_are_rejected_anywhere(template, number):
    line = template.format(number)
    out = rejected(line)
    assert "finite" in out.error


def test_non_finite_numbers_are_rejected_even_outside_the_named_features():
    out = rejected('{"key": "a", "x": 1, "ignored": NaN}', Fields(features=("x",)))
    assert "finite" in out.error


@pytest.mark.parametrize(
    "value, what", [('{"a": 1}', "object"), ("[1, 2]", "list"), ("[]", "list"), ("{}", "object")]
)
def test_feature_objects_and_lists_are_rejected(value, what):
    out = rejected(f'{{"key": "a", "feat": {value}}}')
    assert "feat" in out.error and what in out.error


@pytest.mark.parametrize("value, what", [('{"a": 1}', "object"), ("[1]", "list")])
def test_target_objects_and_lists_are_rejected(value, what):
    out = rejected(f'{{"key": "a", "x": 1, "y": {value}}}')
    assert "'y'" in out.error and what in out.error


@pytest.mark.parametrize("value", ['"3.5"', '"yes"', "true", "false"])
def test_numeric_target_rejects_strings_and_booleans(value):
    out = rejected(f'{{"key": "a", "x": 1, "y": {value}}}', Fields(numeric_target=True))
    assert "'y'" in out.error and "number" in out.error


@pytest.mark.parametrize("value", ['"3.5"', "true"])
def test_non_numeric_target_is_fine_for_classifiers(value):
    assert record(f'{{"key": "a", "y": {value}}}').y == json.loads(value)


@pytest.mark.parametrize(
    "line",
    [
        '{"key": "a", "text": "' + "v" * (2 * 1024 * 1024),  # unterminated string
        "[" * (2 * 1024 * 1024),  # nested far too deeply
        '{"key": "a", "x": ' + "9" * 100 + "} " + "x" * (2 * 1024 * 1024),
    ],
    ids=["unterminated", "deep", "trailing"],
)
def test_a_two_megabyte_invalid_line_is_rejected_and_quoted_briefly(line):
    out = rejected(line)
    quoted = json.loads(out.to_json())
    assert len(quoted["raw"]) <= RAW_LIMIT == 1000
    assert quoted["raw"] == line[:RAW_LIMIT]
    assert len(out.to_json()) < 2 * RAW_LIMIT + len(out.error) + 100


# --- Rejected output --------------------------------------------------------------------------


def test_rejected_to_json_fields():
    out = rejected('{"key": null}')
    assert list(json.loads(out.to_json())) == ["raw", "error"]
    tagged = json.loads(out.to_json(kind=True))
    assert list(tagged) == ["kind", "raw", "error"]
    assert tagged == {"kind": "rejected", "raw": '{"key": null}', "error": out.error}


def test_rejected_invalid_utf8_is_still_json_safe():
    out = rejected(b'{"key": "\xff"}\r\n'.decode("latin-1"))
    quoted = json.loads(out.to_json())
    assert quoted["raw"].startswith('{"key": "')
    assert not quoted["raw"].endswith(("\r", "\n"))


# Values read from Flink SQL (HASH_CODE and MOD over JSON_VALUE of the key) on Flink 2.3.
@pytest.mark.parametrize(
    ("line", "bucket"),
    [
        ('{"key": "é-user"}', 81),  # Java's hash is negative: HASH_CODE takes its absolute value
        ('{"key": "\\u00e9-user"}', 81),
        ('{"key": true}', 3569038 % 128),
        ('{"key": "true"}', 3569038 % 128),
        ('{"key": 100.0}', 46730099 % 128),
        ('{"key": 1e2}', 1527451 % 128),  # JSON_VALUE spells it 1E+2
        ('{"key": 123456789012345678901234567890}', 1395802769 % 128),
    ],
)
def test_route_bucket_is_the_bucket_flink_computes(line, bucket):
    record = parse_line(line.encode("utf-8"))
    assert route_bucket(record.key, record.key_id, 128) == bucket


@pytest.mark.parametrize("pattern", ["k{}", "user-{}", "{}", "dev{:06d}", "{}@example.com"])
def test_spread_routing_shares_sequential_ids_out_evenly(pattern):
    """Ids that differ in a digit fill few buckets under ``hash`` routing (``k0``..``k999``:
    100 of 128, 1 to 21 keys each); ``spread`` routing uses them all, and at parallelism 2
    (buckets 0-63 and 64-127 of ``SPREAD_KEYS``) each subtask gets about half the keys."""
    from riverflink.state.descriptors import SPREAD_KEYS

    ids = [pattern.format(i) for i in range(1000)]
    index = {key: i for i, key in enumerate(SPREAD_KEYS)}
    buckets = [index[spread_bucket(key, json.dumps(key), SPREAD_KEYS)] for key in ids]
    assert len(set(buckets)) == 128
    assert max(buckets.count(b) for b in set(buckets)) <= 20
    assert 440 <= sum(b < 64 for b in buckets) <= 560
    if pattern == "k{}":  # what hash routing makes of them
        assert len({route_bucket(key, json.dumps(key), 128) for key in ids}) == 100


def test_a_number_key_is_identified_as_written_in_decimal():
    spellings = ['{"key": 1e2}', '{"key": 100.0}', '{"key": 100.00}', '{"key": 1E+2}']
    ids = [parse_line(line).key_id for line in spellings]
    assert ids == ["1E+2", "100.0", "100.00", "1E+2"]
    assert parse_line('{"key": -0}').key_id == "0"


# --- the one-pass path reads what the careful one reads -------------------------------------

_VALUES = [
    0.5, -1e-300, 1e308, 0.0, -0.0, 7, -3, 0, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 9.3e18,
    -9.2e18, 2**1000 - 1, 2**1000, 2**1024, -(2**1030),
    True, False, "", "a", 'q"uote', "back\\slash", "é", "\x7f", None, [1.5], {"a": 1},
    [float("inf")], "1e999", "-1e999",
]  # fmt: skip


def _random_line(rng) -> str:
    """A JSON line of a few fields of mixed values, the role fields present or not; the
    strings ``"1e999"`` stand for numbers out of a float's range."""
    fields = {}
    for name in rng.sample(["key", "id", "y", "x0", "x1", "x2", "x3"], rng.randint(0, 7)):
        fields[name] = rng.choice(_VALUES)
    text = json.dumps(fields)
    return text.replace('"1e999"', "1e999").replace('"-1e999"', "-1e999")


@pytest.mark.parametrize(
    "fields",
    [DEFAULT_FIELDS, Fields(numeric_target=True), Fields(key="x0", target="x1", id="x2")],
    ids=["default", "regressor", "roles-renamed"],
)
def test_the_one_pass_path_reads_every_line_as_the_checked_path_does(fields):
    import random

    from riverflink.operators import records

    assert fields.plain
    rng = random.Random(11)
    taken = 0
    for _ in range(20_000):
        text = _random_line(rng)
        try:
            obj = records._DECODER.decode(text)
        except ValueError:
            continue
        fast = records._plain_record(obj, text, fields)
        try:
            checked = records._checked_record(obj, text, fields)
        except records._BadInput:
            checked = None
        if fast is not None:
            taken += 1
            assert checked is not None, text
            assert (fast.key, fast.key_id, fast.id, fast.x, fast.y, fast.raw) == (
                checked.key,
                checked.key_id,
                checked.id,
                checked.x,
                checked.y,
                checked.raw,
            ), text
            assert list(fast.x) == list(checked.x), text  # feature order too
    assert taken > 500  # the path is taken, not just always declined


def _mutated(text: str, rng) -> str:
    """``text`` with a few characters inserted, removed or replaced: mostly invalid JSON,
    some of it valid in unusual ways."""
    alphabet = list(' \t\n\r\x0c\x00\x1f\x7f\xa0\u2028{}[]:,"\\/0123456789.eE+-aflnrtu')
    alphabet += ["NaN", "Infinity", "true", "null", "\\ud800", "\\u12", "1" * 20, "é"]
    for _ in range(rng.randint(1, 3)):
        at, roll = rng.randrange(len(text) + 1), rng.random()
        cut = at + (roll >= 0.4)
        text = text[:at] + ("" if 0.4 <= roll < 0.7 else rng.choice(alphabet)) + text[cut:]
    return text


@pytest.mark.parametrize(
    "fields",
    [DEFAULT_FIELDS, Fields(numeric_target=True), Fields(key="x0", target="x1", id="x2")],
    ids=["default", "regressor", "roles-renamed"],
)
def test_lines_decoded_by_orjson_read_as_python_s_parser_reads_them(fields, monkeypatch):
    """Every line, valid or not, gives the same record or the same rejection whether
    orjson decodes it first or only Python's parser does."""
    import random
    import types

    from riverflink.operators import records

    decoded = []

    def counted(text):
        decoded.append(orjson.loads(text))
        return decoded[-1]

    def refuse(text):
        raise ValueError("orjson left out")

    rng = random.Random(12)
    lines = []
    for _ in range(20_000):
        text = _random_line(rng)
        lines += [text, _mutated(text, rng)]
    orjson = records.orjson
    monkeypatch.setattr(records, "orjson", types.SimpleNamespace(loads=counted))
    fast = [parse_line(text, fields) for text in lines]
    monkeypatch.setattr(records, "orjson", types.SimpleNamespace(loads=refuse))
    slow = [parse_line(text, fields) for text in lines]
    for text, a, b in zip(lines, fast, slow):
        assert type(a) is type(b), text
        if isinstance(a, Record):
            assert (a.key, a.key_id, a.id, a.y, a.raw) == (b.key, b.key_id, b.id, b.y, b.raw)
            assert repr(a.x) == repr(b.x), text  # values, their types, and the order
        else:
            assert a == b, text
    assert len(decoded) > 10_000  # orjson decoded many lines, not just refused them
    assert sum(isinstance(a, Record) for a in fast) > 3_000
    assert sum(isinstance(a, Rejected) for a in fast) > 3_000


def test_fields_that_need_the_checked_path_say_so():
    assert not Fields(schema="{}").plain
    assert not Fields(features=("a",)).plain
    assert not Fields(imputed=("a",)).plain
    assert not Fields(id="key").plain


def test_java_string_hash_is_java_s_over_utf16_code_units():
    """Against Java's definition, one code unit at a time (h = 31 * h + unit), on texts
    of every length class: ASCII, the BMP, lone surrogates, astral characters."""
    import random

    from riverflink.operators.records import java_string_hash

    def by_definition(text: str) -> int:
        h = 0
        data = text.encode("utf-16-be", "surrogatepass")
        for i in range(0, len(data), 2):
            h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
        return h - (1 << 32) if h >= 1 << 31 else h

    rng = random.Random(5)
    ranges = [(32, 126), (0, 0xD7FF), (0xD800, 0xDFFF), (0x10000, 0x10FFFF)]
    for _ in range(5_000):
        n = rng.choice([0, 1, 2, 7, 40, 255, 256, 257, 600])
        chars = rng.sample(ranges, 1) if rng.random() < 0.5 else ranges
        text = "".join(chr(rng.randint(*rng.choice(chars))) for _ in range(n))
        assert java_string_hash(text) == by_definition(text), repr(text)
