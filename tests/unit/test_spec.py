"""Specs are parsed, never evaluated: what they build, and what they refuse to build."""

from __future__ import annotations

import ast
import builtins
import os
import pathlib
import sys

import pytest
from river import (
    anomaly,
    base,
    cluster,
    compose,
    drift,
    feature_extraction,
    linear_model,
    optim,
    preprocessing,
)

from riverflink.state import spec
from riverflink.state.spec import (
    SpecError,
    is_binary_detector,
    model_kind,
    parse_detector,
    parse_model,
)

DEFAULT = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
RECORDS = [
    ({"x": 1.0, "y": 2.0}, True),
    ({"x": -1.5, "y": 0.5}, False),
    ({"x": 2.0, "y": 3.5}, True),
    ({"x": -0.5, "y": -1.0}, False),
    ({"x": 0.3, "y": 1.2}, True),
]


def test_default_spec_predicts_like_the_hand_built_pipeline():
    parsed = parse_model(DEFAULT)
    by_hand = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    assert isinstance(parsed, compose.Pipeline)
    assert list(parsed.steps) == list(by_hand.steps) == ["StandardScaler", "LogisticRegression"]
    for x, y in RECORDS:
        assert parsed.predict_proba_one(x) == by_hand.predict_proba_one(x)
        parsed.learn_one(x, y)
        by_hand.learn_one(x, y)
    assert parsed.predict_proba_one({"x": 0.7, "y": 0.1}) == by_hand.predict_proba_one(
        {"x": 0.7, "y": 0.1}
    )


def test_each_parse_returns_a_fresh_untrained_prototype():
    first, second = parse_model(DEFAULT), parse_model(DEFAULT)
    first.learn_one(*RECORDS[0])
    assert first is not second
    assert second["StandardScaler"].counts == {}
    assert isinstance(second.clone(), compose.Pipeline)


def test_nested_optimizer_gets_its_learning_rate():
    model = parse_model("linear_model.LogisticRegression(optimizer=optim.SGD(0.05), l2=0.001)")
    assert isinstance(model.optimizer, optim.SGD)
    assert model.optimizer.lr.learning_rate == 0.05
    assert model.l2 == 0.001


def test_river_prefix_deep_names_and_keyword_nesting():
    model = parse_model(
        "river.linear_model.LinearRegression("
        "optimizer=optim.SGD(lr=optim.schedulers.InverseScaling(0.1, power=0.25)), l2=-0.0)"
    )
    assert isinstance(model, linear_model.LinearRegression)
    assert model.optimizer.lr.learning_rate == 0.1
    assert model.optimizer.lr.power == 0.25


def test_bare_class_names_are_called_without_arguments():
    model = parse_model("preprocessing.StandardScaler | linear_model.LogisticRegression")
    assert list(model.steps) == ["StandardScaler", "LogisticRegression"]
    model = parse_model("linear_model.LogisticRegression(optimizer=optim.Adam)")
    assert isinstance(model.optimizer, optim.Adam)


def test_pipeline_chains_are_left_associative_and_flat():
    model = parse_model(
        "preprocessing.StandardScaler() | preprocessing.MinMaxScaler() | "
        "linear_model.LinearRegression()"
    )
    assert list(model.steps) == ["StandardScaler", "MinMaxScaler", "LinearRegression"]


def test_literal_arguments():
    model = parse_model(
        "compose.Pipeline(compose.Select('x', 'y'), tree.HoeffdingTreeClassifier("
        "grace_period=+50, nominal_attributes=['x'], split_criterion='gini', binary_split=True))"
    )
    leaf = model["HoeffdingTreeClassifier"]
    assert model["Select"].keys == {"x", "y"}
    assert (leaf.grace_period, leaf.nominal_attributes, leaf.split_criterion) == (50, ["x"], "gini")
    assert leaf.binary_split is True
    assert parse_model("cluster.KMeans(seed=None, halflife=0.5)").seed is None
    imputer = parse_model(
        "preprocessing.StatImputer(('x', stats.Mean()), ('y', stats.Mean())) "
        "| linear_model.LinearRegression()"
    )
    assert [feature for feature, _ in imputer["StatImputer"].imputers] == ["x", "y"]
    weighted = parse_model("linear_model.LogisticRegression(loss=optim.losses.Log(weight_pos=2))")
    assert weighted.loss.weight_pos == 2
    codes = parse_model(
        "multiclass.OutputCodeClassifier(linear_model.LogisticRegression(), 3, seed=7)"
    )
    assert (codes.code_size, codes.seed) == (3, 7)


def test_dict_arguments():
    model = parse_model(
        "compose.Renamer({'a': 'b', -1: (None, [2.5])}) | linear_model.LinearRegression()"
    )
    assert model["Renamer"].mapping == {"a": "b", -1: (None, [2.5])}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (DEFAULT, "classifier"),
        ("linear_model.LinearRegression()", "regressor"),
        ("preprocessing.StandardScaler() | linear_model.LinearRegression()", "regressor"),
        ("anomaly.HalfSpaceTrees(seed=1)", "anomaly"),
        ("preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=1)", "anomaly"),
        ("cluster.KMeans(n_clusters=3, seed=1)", "clusterer"),
    ],
)
def test_model_kind(text, kind):
    assert model_kind(parse_model(text)) == kind


def test_model_kind_matches_hand_built_models():
    assert model_kind(anomaly.HalfSpaceTrees(seed=1)) == "anomaly"
    assert model_kind(cluster.KMeans()) == "clusterer"
    with pytest.raises(SpecError, match="StandardScaler is not a supported model"):
        model_kind(preprocessing.StandardScaler())
    with pytest.raises(SpecError, match="empty pipeline"):
        model_kind(compose.Pipeline())


def test_detectors():
    ddm = parse_detector("drift.binary.DDM()")
    assert isinstance(ddm, drift.binary.DDM) and is_binary_detector(ddm)
    page_hinkley = parse_detector("drift.PageHinkley(threshold=20)")
    assert isinstance(page_hinkley, drift.PageHinkley) and not is_binary_detector(page_hinkley)
    assert page_hinkley.threshold == 20
    adwin = parse_detector(" river.drift.ADWIN(delta=0.001) ")
    assert isinstance(adwin, base.DriftDetector) and adwin.delta == 0.001


@pytest.mark.parametrize("text", ["none", "None", " NONE ", "\tnone\n"])
def test_none_means_no_detector(text):
    assert parse_detector(text) is None


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (parse_model, "__import__('os')", "'__import__'"),
        (parse_model, "os.system('x')", "unknown name 'os.system' at column 1"),
        (parse_model, "linear_model.__class__", "'linear_model.__class__'"),
        (parse_model, "(lambda: 1)()", "lambda 'lambda: 1' at column 2"),
        (parse_model, "linear_model.LogisticRegression()[0]", "subscript"),
        (parse_model, "open('f')", "unknown name 'open' at column 1"),
        (parse_model, "linear_model.Nope()", "unknown name 'linear_model.Nope' at column 1"),
        (
            parse_model,
            "preprocessing.StandardScaler() + linear_model.LogisticRegression()",
            "unsupported operator in 'preprocessing.StandardScaler() + linear_model",
        ),
        (parse_model, "linear_model.LogisticRegression(**{'l2': 1})", "\"**{'l2': 1}\""),
        (parse_model, "linear_model.LogisticRegression(*[1])", "'*[1]' at column 33"),
        (parse_model, "", "model spec is empty"),
        (parse_model, "   ", "model spec is empty"),
        (parse_model, "linear_model.LogisticRegression(l2=1", "column 32, near '(l2=1'"),
        (parse_model, "drift.ADWIN()", "ADWIN is not a supported model"),
        (parse_model, "preprocessing.StandardScaler()", "StandardScaler is not a supported"),
        (parse_detector, "linear_model.LogisticRegression()", "is not a drift detector"),
        (parse_detector, "", "drift detector spec is empty"),
        (
            parse_model,
            "linear_model.LogisticRegression(nope=1)",
            "cannot build LogisticRegression 'linear_model.LogisticRegression(nope=1)'",
        ),
        (parse_model, "linear_model.LogisticRegression().l2", "attribute access"),
        (parse_model, "linear_model.LinearRegression()()", "call result"),
        (parse_model, "linear_model.base.np.ndarray(1)", "'linear_model.base.np'"),
        (parse_model, "f'{1}'", "f-string"),
        (parse_model, "[m for m in linear_model]", "comprehension"),
        (parse_model, "(m := 1)", "walrus"),
        (parse_model, "1 < 2", "comparison"),
        (parse_model, "linear_model.LinearRegression(l2=b'1')", "unsupported literal \"b'1'\""),
        (parse_model, "linear_model.LinearRegression(l2=-'1')", "not a number in \"-'1'\""),
        (parse_model, "linear_model.LinearRegression(l2={[1]: 2})", "dict keys must be"),
        (parse_model, "preprocessing.StandardScaler | 1", "not '1' at column 32"),
        (parse_model, "datasets.Phishing()", "unknown name 'datasets.Phishing'"),
        (parse_model, "-" * 100_000 + "1", "nested too deeply"),
        (parse_model, "42", "int is not a supported model"),
    ],
)
def test_rejections_point_at_the_offending_part(parse, text, expected):
    with pytest.raises(SpecError) as info:
        parse(text)
    message = str(info.value)
    assert expected in message
    assert repr(text.strip())[:50] in message or not text.strip()


def test_constructor_errors_chain_the_original():
    with pytest.raises(SpecError, match="takes \\(optimizer, loss, l2") as info:
        parse_model("linear_model.LogisticRegression(nope=1)")
    assert isinstance(info.value.__cause__, TypeError)


def test_unknown_names_suggest_close_matches():
    with pytest.raises(SpecError, match="did you mean 'linear_model.LogisticRegression'"):
        parse_model("linear_model.LogisticRegresion()")
    with pytest.raises(SpecError, match="did you mean 'preprocessing'"):
        parse_model("preprocesing.StandardScaler() | linear_model.LinearRegression()")


def test_multiline_specs_report_lines():
    with pytest.raises(SpecError, match="at line 2, column 3"):
        parse_model("(preprocessing.StandardScaler() |\n  linear_model.Nope())")


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)
    with pytest.raises(SpecError, match="must be a string"):
        parse_model(None)  # type: ignore[arg-type]


def test_nothing_is_evaluated(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    monkeypatch.setattr(builtins, "print", lambda *a, **k: calls.append(a))
    target = tmp_path / "pwned"
    for text in [
        f"open({str(target)!r}, 'w')",
        f"linear_model.LogisticRegression(l2=open({str(target)!r}, 'w'))",
        "linear_model.LogisticRegression(l2=print('pwned'))",
        "__import__('os').system('touch pwned')",
        "preprocessing.StandardScaler() | os.system('x')",
        "antigravity.fly()",
    ]:
        with pytest.raises(SpecError):
            parse_model(text)
    assert calls == []
    assert not target.exists()
    assert "antigravity" not in sys.modules


def test_module_never_evals_or_imports_pyflink():
    tree = ast.parse(pathlib.Path(spec.__file__).read_text())
    calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
    called = {f.id for f in calls if isinstance(f, ast.Name)}
    called |= {f.attr for f in calls if isinstance(f, ast.Attribute)}
    assert not called & {"eval", "exec", "compile", "__import__"}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(name.startswith("pyflink") for name in imported)


@pytest.mark.parametrize(
    "text, named",
    [
        ("linear_model.LogisticRegression() | linear_model.LogisticRegression()", "classifier"),
        (
            "cluster.KMeans() | preprocessing.StandardScaler() | tree.HoeffdingTreeRegressor()",
            "clusterer",
        ),
    ],
)
def test_pipeline_steps_before_the_last_must_transform(text, named):
    """River finds out only at the first record, so every record was rejected."""
    with pytest.raises(SpecError, match=rf"must transform the features .* it is a {named}"):
        parse_model(text)


@pytest.mark.parametrize(
    "text, by_hand",
    [
        (
            "preprocessing.StandardScaler | preprocessing.OneHotEncoder"
            " | linear_model.PAClassifier",
            lambda: (
                preprocessing.StandardScaler()
                | preprocessing.OneHotEncoder()
                | linear_model.PAClassifier()
            ),
        ),
        (
            "anomaly.QuantileFilter(anomaly.HalfSpaceTrees(seed=7), q=0.95)"
            " | linear_model.Perceptron()",
            lambda: (
                anomaly.QuantileFilter(anomaly.HalfSpaceTrees(seed=7), q=0.95)
                | linear_model.Perceptron()
            ),
        ),
        (
            "feature_extraction.PolynomialExtender() | linear_model.LinearRegression()",
            lambda: feature_extraction.PolynomialExtender() | linear_model.LinearRegression(),
        ),
    ],
    ids=["transformers", "anomaly-filter", "feature-extractor"],
)
def test_transformers_and_anomaly_filters_may_come_first(text, by_hand):
    """Accepted, and built as the same pipeline as by hand: it learns and predicts alike."""
    model, expected = parse_model(text), by_hand()
    assert isinstance(model, compose.Pipeline)
    assert list(model.steps) == list(expected.steps)
    *first, last = model.steps.values()
    assert first and all(
        isinstance(step, (base.Transformer, anomaly.base.AnomalyFilter)) for step in first
    )
    assert model_kind(model) == model_kind(last) == model_kind(expected)
    classifier = model_kind(model) == "classifier"

    def predicted(pipeline, x):
        return pipeline.predict_proba_one(x) if classifier else pipeline.predict_one(x)

    probe = {"x": 0.7, "y": 0.1}
    untrained = predicted(model, probe)
    for x, y in RECORDS * 4:
        label = y if classifier else float(y) + x["x"]
        assert predicted(model, x) == predicted(expected, x)
        model.learn_one(x, label)
        expected.learn_one(x, label)
    assert predicted(model, probe) == predicted(expected, probe)
    assert predicted(model, probe) != untrained, "the pipeline learned"


@pytest.mark.parametrize(
    "text",
    [
        "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
        "tree.HoeffdingTreeClassifier(grace_period=20)",
        "ensemble.BaggingClassifier(linear_model.LogisticRegression(), n_models=3, seed=7)",
        "preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.01)",
    ],
)
def test_a_built_model_learns_as_one_made_by_its_constructors(text):
    """builder() may unpickle a copy of a first build (deterministic specs): every key's
    model is still independent and predicts exactly as one parsed anew."""
    import pickle
    import random

    from riverflink.state.spec import builder

    build = builder(text, "model")
    assert build.func is pickle.loads  # these specs build the same state every time
    made, fresh, other = build(), parse_model(text), build()
    assert made is not other
    rng = random.Random(3)
    for _ in range(300):
        x = {f"x{j}": rng.gauss(0, 1) for j in range(4)}
        y = rng.gauss(0, 1) if "LinearRegression" in text else rng.random() < 0.5
        assert made.predict_one(x) == fresh.predict_one(x)
        made.learn_one(x, y)
        fresh.learn_one(x, y)
    assert other.predict_one({"x0": 1.0}) == parse_model(text).predict_one({"x0": 1.0})


def test_unseeded_random_models_are_built_anew_for_every_key():
    from riverflink.state.spec import builder

    build = builder("ensemble.BaggingClassifier(linear_model.LogisticRegression())", "model")
    assert build()._rng.getstate() != build()._rng.getstate()
    seeded = builder("ensemble.BaggingClassifier(linear_model.LogisticRegression(), seed=1)", "m")
    assert seeded()._rng.getstate() == seeded()._rng.getstate()
