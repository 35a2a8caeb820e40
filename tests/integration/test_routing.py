"""Flink routes each line by its key, read in Java; one key must always reach one model.

Java picks the routing bucket (riverflink's router, or Flink SQL where the router
cannot be built), Python reads the record. The same key
written in different ways (escaped or raw Unicode, key field first or last, a
byte-order mark, nested fields of the same name) must land on the same model,
in both profiles, at parallelism 2, with nothing rejected.
"""

from __future__ import annotations

import json
import random

import pytest

from tests.integration.conftest import assert_like_river, run_job

FEATURES = ("f0", "f1", "f2")


def _spellings(record: dict, rng: random.Random) -> str:
    """One JSON line for ``record``, in one of several equivalent spellings."""
    features = {f: record[f] for f in FEATURES}
    rest = {"id": record["id"], "y": record["y"]}
    key = record["key"]
    style = rng.randrange(5)
    if style == 0:  # key first, raw UTF-8
        return json.dumps({"key": key, **features, **rest}, ensure_ascii=False)
    if style == 1:  # key first, \u escapes (Python's default)
        return json.dumps({"key": key, **features, **rest})
    if style == 2:  # key last, odd spacing
        body = json.dumps({**features, **rest}, ensure_ascii=False)[1:-1]
        return "{ " + body + ' ,  "key" :' + json.dumps(key, ensure_ascii=False) + " }"
    if style == 3:  # a nested field named like the key comes first
        return json.dumps({"meta": {"key": "decoy"}, "key": key, **features, **rest})
    return json.dumps({"key": key, **features, **rest}, indent=None, separators=(",", ":"))


KEYS = [
    "plain",
    "é-user",
    "😀",
    'q"uote',
    "back\\slash",
    "",
    7,
    "7",
    True,
    2.5,
    -3,
    "日本",
]


@pytest.mark.parametrize(
    ("profile", "router"), [("latency", "java"), ("throughput", "java"), ("throughput", "sql")]
)
def test_every_spelling_of_a_key_reaches_one_model(tmp_path, profile, router):
    rng = random.Random(11)
    records = []
    for i in range(1200):
        key = KEYS[i % len(KEYS)]
        x = {f: rng.gauss(0, 1) for f in FEATURES}
        records.append({"key": key, "id": i, **x, "y": x["f0"] + 0.3 * x["f1"] > 0})
    lines = [_spellings(r, rng) for r in records]
    lines[0] = "\ufeff" + lines[0]  # a byte-order mark on the first line
    source = tmp_path / "in.jsonl"
    source.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))

    out = run_job(
        source,
        tmp_path / "out",
        *("--features", ",".join(FEATURES), "--drift", "none"),
        *("--parallelism", "2", "--profile", profile),
        env={"RIVERFLINK_ROUTER": router},
    ).out
    assert out["rejected"] == []
    assert_like_river(out, records, make_detector=None, features=FEATURES)  # --drift none


def test_sql_router_and_python_compute_the_same_bucket_for_any_key_field_and_spelling():
    """Flink SQL (the fallback routing) against ``route_bucket`` (the learner's check)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from riverflink.operators.records import Fields, parse_line, route_bucket
    from riverflink.pipeline.routing import key_text_sql
    from riverflink.state.descriptors import ROUTING_BUCKETS

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    lines = _tricky_lines()
    for field in dict.fromkeys(f for f, _ in lines):
        raw = [line for f, line in lines if f == field]
        rows = ", ".join("('" + r.replace("'", "''") + "')" for r in raw)
        bucket = f"MOD(HASH_CODE({key_text_sql(field)}), {ROUTING_BUCKETS})"
        result = t_env.execute_sql(f"SELECT f0, {bucket} FROM (VALUES {rows}) AS T(f0)")
        java = {row[0]: row[1] for row in result.collect()}
        for line in raw:
            record = parse_line(line, Fields(key=field))
            assert route_bucket(record.key, record.key_id, ROUTING_BUCKETS) == java[line], line


@pytest.fixture
def java_router():
    """riverflink's router class (``riverflink.RouteLines``), loaded in this process's JVM."""
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from riverflink.pipeline.router_jar import router_jar

    jar = router_jar()
    assert jar is not None, "the router could not be built (is a JDK installed?)"
    add_jars_to_context_class_loader([jar.as_uri()])
    return get_gateway().jvm.riverflink.RouteLines


def test_java_router_and_python_compute_the_same_bucket_for_any_key_field_and_spelling(
    java_router,
):
    """riverflink's router (``operators/java``) against ``route_bucket``, line by line."""
    from riverflink.operators.records import Fields, parse_line, route_bucket
    from riverflink.state.descriptors import ROUTING_BUCKETS

    for field, line in _tricky_lines():
        record = parse_line(line, Fields(key=field))
        expected = route_bucket(record.key, record.key_id, ROUTING_BUCKETS)
        assert java_router.bucketOf(line, field, ROUTING_BUCKETS) == expected, line


def test_java_router_and_python_spread_keys_alike(java_router):
    """``spread`` routing: riverflink's router against ``spread_bucket``, line by line."""
    from pyflink.java_gateway import get_gateway

    from riverflink.operators.records import Fields, parse_line, spread_bucket
    from riverflink.state.descriptors import SPREAD_KEYS

    gateway = get_gateway()
    keys = gateway.new_array(gateway.jvm.int, len(SPREAD_KEYS))
    for i, key in enumerate(SPREAD_KEYS):
        keys[i] = key
    router = java_router
    lines = _tricky_lines() + [("key", json.dumps({"key": f"user-{i}"})) for i in range(300)]
    for field, line in lines:
        record = parse_line(line, Fields(key=field))
        expected = spread_bucket(record.key, record.key_id, SPREAD_KEYS)
        assert router.spreadBucketOf(line, field, keys) == expected, line


def test_spread_keys_give_every_bucket_a_key_group_of_its_own():
    """So subtasks get equal shares of buckets at any parallelism: 64 and 64 at 2."""
    from pyflink.java_gateway import get_gateway

    from riverflink.state.descriptors import ROUTING_BUCKETS, SPREAD_KEYS

    gateway = get_gateway()
    groups = gateway.jvm.org.apache.flink.runtime.state.KeyGroupRangeAssignment

    def as_flink_key(bucket):  # what PyFlink keys by: Row(bucket)
        fields = gateway.new_array(gateway.jvm.java.lang.Object, 1)
        fields[0] = gateway.jvm.java.lang.Integer(bucket)
        return gateway.jvm.org.apache.flink.types.Row.of(fields)

    found = [groups.assignToKeyGroup(as_flink_key(k), ROUTING_BUCKETS) for k in SPREAD_KEYS]
    assert found == list(range(ROUTING_BUCKETS))


def _tricky_lines() -> list:
    """(key field, raw line as the sources read it): many fields, values and spellings."""
    rng = random.Random(5)
    values = ["u1", "é", "😀", 'a"b', "a\\b", "", "tab\there", 0, -0, 12, 10**30, 2.5, 1e2, True]
    values += [False, -7.25, 1.5e-300, "  spaced  ", "a,b}", "\u00e9"]
    fields = ["key", "user-id", "user id", "k'ey", 'k"ey', "ключ", "a.b", "$", "_k1"]
    lines = []
    for field in fields:
        for value in values:
            ensure_ascii = rng.random() < 0.5
            lines.append((field, json.dumps({"x": 1, field: value}, ensure_ascii=ensure_ascii)))
            lines.append((field, json.dumps({field: value, "x": 1}, ensure_ascii=ensure_ascii)))
            spaced = "{ \t" + json.dumps(field) + " :\n " + json.dumps(value) + " }"
            lines.append((field, spaced))
        lines.append((field, "\ufeff" + json.dumps({field: "bom"})))
        duplicate = json.dumps({"x": 1, field: "first"})[:-1] + f", {json.dumps(field)}: 1}}"
        lines.append((field, duplicate))  # the last one counts, as in Python
    lines.append(("key", '{"key": 1E2, "x": 1}'))
    lines.append(("key", '{"key": 100.0, "x": 1}'))
    lines.append(("key", '{"key": -1.5e3}'))
    return [(f, line.encode("utf-8").decode("latin-1")) for f, line in lines]
