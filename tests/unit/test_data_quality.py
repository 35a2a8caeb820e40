"""--schema and --feature-drift through riverflink.replay (the job's own steps, no JVM),
checked against the ``jsonschema`` library and plain River detectors."""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys

import jsonschema
import pytest
from river import drift, linear_model, preprocessing, tree

import riverflink
from riverflink.config.settings import SettingsError
from riverflink.operators.learner import OnlineLearner
from riverflink.operators.records import Fields, parse_line
from riverflink.operators.schema import read_schema, schema_error, schema_text
from riverflink.state import envelope
from tests.reference import reference_run

SCHEMA_YAML = """\
$schema: https://json-schema.org/draft/2020-12/schema
type: object
required: [key]
properties:
  key: {type: string}
  a: {type: [number, "null"], minimum: -50}
  b: {type: integer, maximum: 1000}
  color: {enum: [red, green, blue]}
"""


def _records(n: int = 3000, seed: int = 7) -> list:
    """Three keys whose feature ``a`` shifts half-way; ``b`` an integer, ``flag`` a bool,
    ``color`` text; some records violate the schema above, some have no label."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        key = f"k{i % 3}"
        shift = 4.0 if i > n // 2 else 0.0
        record = {
            "key": key,
            "a": round(rng.gauss(shift, 1.0), 4),
            "b": rng.randint(0, 9) + (20 if shift else 0),
            "flag": rng.random() < 0.5,
            "color": rng.choice(["red", "green", "blue"]),
        }
        if rng.random() < 0.8:
            record["y"] = record["a"] + rng.gauss(0, 1) > 1.0
        if i % 97 == 5:
            record["a"] = -99.5  # below the minimum
        if i % 131 == 7:
            record["color"] = "purple"
        if i % 157 == 9:
            record["b"] = "many"
        if i % 211 == 3:
            record["a"] = None  # a missing value: valid, not watched, not learned
        records.append(record)
    return records


@pytest.fixture
def schema_file(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text(SCHEMA_YAML)
    return path


def _split(out: list) -> dict:
    kinds: dict = {"prediction": [], "alert": [], "rejected": [], "outcome": []}
    for line in out:
        kind = line.pop("kind")
        kinds[kind].append(line)
    return kinds


@pytest.mark.parametrize("on_drift", ["alert", "reset"])
def test_valid_records_learn_as_plain_river_and_feature_alerts_equal_plain_detectors(
    schema_file, on_drift
):
    records = _records()
    lines = [json.dumps(r) for r in records]
    out = _split(
        list(
            riverflink.replay(
                lines,
                model="tree.HoeffdingTreeClassifier()",
                drift="drift.ADWIN(delta=0.1)",
                on_drift=on_drift,
                schema=str(schema_file),
                feature_drift="drift.ADWIN()",
            )
        )
    )
    checker = jsonschema.Draft202012Validator(json.loads(read_schema(schema_file)))
    valid = [r for r in records if checker.is_valid(r)]
    invalid = [r for r in records if not checker.is_valid(r)]
    assert len(invalid) > 40 and len(valid) > 2500  # the data exercise both sides

    expected = reference_run(
        valid,
        tree.HoeffdingTreeClassifier,
        make_detector=lambda: drift.ADWIN(delta=0.1),
        detector_spec="drift.ADWIN(delta=0.1)",
        on_drift=on_drift,
        make_feature_detector=drift.ADWIN,
        feature_detector_spec="drift.ADWIN()",
    )
    assert out["prediction"] == expected["predictions"]
    assert out["alert"] == expected["alerts"]
    watched = {a["feature"] for a in out["alert"] if a["feature"] is not None}
    assert watched == {"a", "b"}  # numbers drift; the bool and the text are not watched
    assert any(a["feature"] is None for a in out["alert"])  # error drift, "feature": null

    # Every violation is rejected, naming one of the places jsonschema itself finds.
    assert [json.loads(r["raw"]) for r in out["rejected"]] == invalid
    for line, record in zip(out["rejected"], invalid):
        places = {f"schema: {e.json_path}: " for e in checker.iter_errors(record)}
        assert any(line["error"].startswith(place) for place in places), (line, places)


def test_a_rejected_record_changes_nothing(schema_file):
    lines = [
        '{"key": "k", "a": 1.0, "b": 2, "y": true}',
        '{"key": "k", "a": -51, "b": 2, "y": false}',  # violates: no n, no state
        '{"key": "k", "id": 1, "a": 2.0, "b": 3}',
        '{"key": "k", "id": 1, "a": 3.0, "b": 4}',  # features twice for one id: refused
        '{"key": "k", "a": 4.0, "b": 5, "y": true}',
    ]
    out = list(
        riverflink.replay(
            lines, schema=str(schema_file), feature_drift="drift.PageHinkley()", drift="none"
        )
    )
    assert [o["kind"] for o in out] == [
        "prediction",
        "rejected",
        "prediction",
        "rejected",
        "prediction",
    ]
    assert [o["n"] for o in out if o["kind"] == "prediction"] == [0, 1, 2]
    assert out[1]["error"] == "schema: $.a: -51 is less than the minimum of -50"
    learner = OnlineLearner(
        model_spec="linear_model.LogisticRegression()", feature_drift_spec="drift.PageHinkley()"
    )
    fields = Fields(schema=read_schema(schema_file))
    state = None
    for line in lines:
        record = parse_line(line, fields)
        if isinstance(record, Exception) or not hasattr(record, "x"):
            continue
        if learner.refuse(state, record) is None:
            state, _ = learner.step(state, record)
    watched = state.feature_detectors
    assert sorted(watched) == ["a", "b"]
    expected = drift.PageHinkley()
    for value in (1.0, 2.0, 4.0):  # the three records applied
        expected.update(value)
    assert pickle.dumps(watched["a"]) == pickle.dumps(expected)


def test_feature_detectors_are_kept_in_the_envelope_and_go_on_where_they_stood():
    learner = OnlineLearner(
        model_spec="preprocessing.StandardScaler() | linear_model.LinearRegression()",
        feature_drift_spec="drift.ADWIN()",
    )
    rng = random.Random(3)
    records = [
        parse_line(json.dumps({"key": "k", "x": rng.gauss(0 if i < 400 else 3, 1), "y": 1.0}))
        for i in range(800)
    ]
    whole, cut = None, None
    whole_alerts, cut_alerts = [], []
    for i, record in enumerate(records):
        whole, out = learner.step(whole, record)
        whole_alerts += [o for o in out if type(o).__name__ == "FeatureDriftAlert"]
        if i == 300:  # a checkpoint: the key's bytes, read back
            cut = envelope.loads(envelope.dumps(cut))
        cut, out = learner.step(cut, record)
        cut_alerts += [o for o in out if type(o).__name__ == "FeatureDriftAlert"]
    assert whole_alerts and whole_alerts == cut_alerts
    assert whole.feature_detectors["x"].width == cut.feature_detectors["x"].width


def test_schema_errors_name_the_path_and_the_rule():
    text = schema_text(
        {
            "type": "object",
            "properties": {
                "load": {"minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}},
                "unit price": {"type": "number"},
            },
            "required": ["key"],
        }
    )
    assert schema_error(text, {"key": 1, "load": -1.5}) == (
        "schema: $.load: -1.5 is less than the minimum of 0"
    )
    assert schema_error(text, {"load": 1}) == 'schema: $: "key" is a required property'
    assert schema_error(text, {"key": 1, "tags": ["a", 2]}) == (
        'schema: $.tags[1]: 2 is not of type "string"'
    )
    assert schema_error(text, {"key": 1, "unit price": "x"}) == (
        'schema: $[\'unit price\']: "x" is not of type "number"'
    )
    assert schema_error(text, {"key": 1, "load": 0}) is None


@pytest.mark.parametrize(
    "content, suffix, problem",
    [
        ('{"type": 12}', ".json", "not a valid JSON Schema"),
        ('{"minimum": "zero"}', ".json", "not a valid JSON Schema"),
        ("{not json", ".json", "not valid JSON"),
        ("type: [object\n", ".yaml", "not valid YAML"),
        ("[1, 2]", ".json", "a JSON Schema is an object"),
    ],
)
def test_an_invalid_schema_is_refused_before_anything_runs(tmp_path, content, suffix, problem):
    path = tmp_path / f"schema{suffix}"
    path.write_text(content)
    with pytest.raises(SettingsError, match=problem):
        riverflink.replay([], schema=str(path))
    source = tmp_path / "in.jsonl"
    source.write_text('{"key": "a", "x": 1, "y": true}\n')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "riverflink",
            "run",
            "--source",
            str(source),
            "--output",
            str(tmp_path / "out"),
            "--schema",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert problem in done.stderr and str(path) in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_schema_file_and_a_binary_feature_detector_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="no such file"):
        riverflink.replay([], schema=str(tmp_path / "nope.json"))
    with pytest.raises(ValueError, match="--feature-drift .*0/1"):
        riverflink.replay([], feature_drift="drift.binary.DDM()")
    with pytest.raises(ValueError, match="--feature-drift"):
        riverflink.replay([], feature_drift="linear_model.LinearRegression()")


def test_stat_imputer_fills_in_missing_and_null_features():
    """The README's example: missing values imputed by River's StatImputer in the spec.
    River's imputer fills a feature that is None; the plain loop gives it records whose
    missing features are None, as a River user would."""
    from river import stats

    spec = (
        'preprocessing.StatImputer(("a", stats.Mean()), ("b", 0)) | '
        "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
    )
    rng = random.Random(5)
    records = []
    for i in range(800):
        record = {"key": f"k{i % 2}", "a": rng.gauss(0, 1), "b": rng.randint(0, 5)}
        record["y"] = record["a"] > 0
        if i % 5 == 1:
            record["a"] = None  # null: imputed in its place
        elif i % 7 == 2:
            del record["b"]  # absent: imputed too (a record of nulls only is a late label)
        records.append(record)
    records.append({"key": "k0", "a": None, "y": True})  # no feature at all: rejected
    out = _split(list(riverflink.replay([json.dumps(r) for r in records], model=spec)))

    models, predictions = {}, []
    for record in records[:-1]:
        model = models.setdefault(
            record["key"],
            preprocessing.StatImputer(("a", stats.Mean()), ("b", 0))
            | preprocessing.StandardScaler()
            | linear_model.LogisticRegression(),
        )
        x = {"a": record["a"], "b": record.get("b")}
        predictions.append(model.predict_one(x))
        model.learn_one(x, record["y"])
    assert [p["y_pred"] for p in out["prediction"]] == predictions
    assert [r["error"] for r in out["rejected"]] == [
        "a label without features needs an id to find the prediction it labels"
    ]


def test_the_readme_schema_and_imputer_spec_take_the_demo_records(tmp_path):
    """The README's data-quality examples, as written there, on `make demo`'s records."""
    import re
    from pathlib import Path

    from riverflink.cli.demo import generate

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Data quality") :]
    schema = tmp_path / "demo-schema.yaml"
    schema.write_text(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    spec = re.search(r"--model '([^']+)'", section.replace("\n", " ")).group(1)
    source = tmp_path / "demo.jsonl"
    generate(source)
    out = _split(
        list(
            riverflink.replay(
                [source.read_bytes()], model=spec, schema=str(schema), feature_drift="drift.ADWIN()"
            )
        )
    )
    assert len(out["prediction"]) == 8000
    errors = [r["error"] for r in out["rejected"]]
    assert len(errors) == 3 and 'schema: $: "key" is a required property' in errors
    assert out["alert"] and all("feature" in a for a in out["alert"])  # s0's drift, named
