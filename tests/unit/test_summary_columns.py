"""The end-of-run summary and the report, read from compact columns, say what they said.

The expected texts and values below were printed by the summary as it was before it held
outputs in columns (tuples and dicts per key, 1.9 GB for 2,000,000 predictions over
1,000,000 keys): the same outputs must read the same, to the byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from river import metrics, utils

from riverflink.results import keys as keys_module
from riverflink.results.keys import KeyTable
from riverflink.results.outputs import OutputReader, read_output_dir
from riverflink.results.report import _keys_figure, _overall_figure, _pyplot
from riverflink.results.summary import key_metrics, run_summary, summary_table


def _write(directory: Path, kind: str, part: str, lines: list) -> None:
    (directory / kind).mkdir(parents=True, exist_ok=True)
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    (directory / kind / part).write_text(text, encoding="utf-8")


def _prediction(key, ident, y_pred, y_true, n, **extra) -> dict:
    return {"key": key, "id": ident, "y_pred": y_pred, "y_true": y_true, "n": n, **extra}


def _outcome(key, ident, y_pred, y_true) -> dict:
    return {"key": key, "id": ident, "y_pred": y_pred, "y_true": y_true, "delay_s": 0.5}


def _alert(key, n, feature=...) -> dict:
    row = {"key": key, "id": 0, "n": n, "detector": "drift.ADWIN()", "action": "alert"}
    if feature is not ...:
        row["feature"] = feature
    return row


@pytest.fixture
def classified(tmp_path) -> Path:
    """Keys of four types over three part files (one from a restored run), predictions
    out of order of n, labels that come late (out of order, one twice predicted, one for
    no prediction), a prediction of None, pseudo-labels, alerts, rejected lines."""
    out = tmp_path / "classified"
    p = _prediction
    _write(out, "predictions", "part-a-0-0.jsonl", [
        p("a", 1, True, True, 0), p(7, 2, "x", None, 0), p("ü", 3, "y", "y", 0),
        p("a", 4, False, True, 1), p(7, 5, "y", None, 1), p("b", 6, None, "x", 0),
        p("a", 7, True, None, 2), p(True, 8, 1, 1, 0), p(2.5, 9, "x", "x", 0),
        p("b", None, "x", None, 1, pseudo=True), p("b", "t1", "x", None, 2),
    ])  # fmt: skip
    _write(out, "predictions", "part-a-1-0.jsonl", [
        p("a", 11, True, True, 5), p("a", 10, True, False, 4), p(7, 12, "x", "x", 2),
        p("b", "t1", "y", None, 3), p("ü", 13, "x", "y", 1), p(-0.0, 14, True, False, 0),
        p(0.0, 15, True, True, 1), p(True, 16, True, 1, 1), p("c", 17, 0, False, 0),
    ])  # fmt: skip
    _write(out, "predictions", "part-b-0-0.jsonl", [
        p("a", 18, True, True, 6), p(7, 19, "x", None, 3), p("d", 20, "z", "z", 0),
    ])  # fmt: skip
    _write(out, "outcomes", "part-0-0.jsonl", [
        _outcome(7, 5, "y", "x"), _outcome("a", 7, True, True), _outcome(7, 2, "x", "x"),
        _outcome("b", "t1", "y", "y"), _outcome("zz", 99, "x", "x"),
    ])  # fmt: skip
    _write(out, "outcomes", "part-1-0.jsonl", [_outcome(7, 19, "x", "y")])
    _write(out, "alerts", "part-0-0.jsonl", [
        _alert("a", 1), _alert(7, 2, None), _alert("a", 4, "f1"), _alert("ü", 1, "f2"),
        _alert("a", 5, "f1"), _alert("only-alerted", 3),
    ])  # fmt: skip
    _write(out, "rejected", "part-0-0.jsonl", [
        {"raw": "{", "error": "invalid JSON: Expecting value: line 1 column 2 (char 1)"},
        {"raw": "{}", "error": "key field 'key' is missing or null"},
    ])  # fmt: skip
    return out


@pytest.fixture
def regressed(tmp_path) -> Path:
    """A regressor's output: float and integer labels, predictions of None, of NaN and
    of integers (whose errors are integers), labels that come late."""
    out = tmp_path / "regressed"
    p = _prediction
    _write(out, "predictions", "part-0-0.jsonl", [
        p("r", 1, 0.1, 0.3, 0), p("s", 2, 2, 3, 0), p("r", 3, 1.25, 1, 1),
        p("s", 4, None, 2.0, 1), p("r", 5, 0.5, None, 2), p("t", 6, 7.75, 8.5, 0),
        '{"key": "t", "id": 7, "y_pred": NaN, "y_true": 1.5, "n": 1}',
        p("s", 8, 2.5, None, 2), p("r", 9, 0.1 + 0.2, 0.3, 3),
    ])  # fmt: skip
    _write(out, "predictions", "part-1-0.jsonl", [
        p("r", 10, 0.7, 0.1, 5), p("r", 11, 0.2, 0.6, 4), p(3, 12, 1.0, 1.0, 0),
    ])  # fmt: skip
    _write(out, "outcomes", "part-0-0.jsonl", [
        _outcome("s", 8, 2.5, 4), _outcome("r", 5, 0.5, 0.1), _outcome("t", 99, 1.0, 2.0),
    ])  # fmt: skip
    _write(out, "alerts", "part-0-0.jsonl", [_alert("r", 4, None), _alert("t", 1, "x")])
    return out


def _metric(spec: str):
    """A River metric from its spec, as ``--metric`` names it."""
    return eval(spec, {"metrics": metrics, "utils": utils})


def _table(summary, **options) -> str:
    return summary_table(summary, **options).replace(str(summary.directory), "OUT")


def _curves(summary) -> str:
    return repr({slot: vars(curve) for slot, curve in summary.keys.items()})


def _figure_data(summary) -> list:
    plt = _pyplot()
    data = []
    for figure in (_overall_figure(summary, plt), _keys_figure(summary, plt, 4)):
        for ax in figure.axes:
            for line in ax.lines:
                data.append((ax.get_title(), line.get_label(), line.get_xydata().tolist()))
        plt.close(figure)
    return data


def test_a_classifiers_output_reads_as_it_did(classified):
    summary = read_output_dir(classified)
    assert summary.task == "classification"
    assert _table(summary) == CLASSIFIED_TABLE
    assert _table(summary, keys=3) == CLASSIFIED_TABLE_3
    assert _curves(summary) == CLASSIFIED_CURVES
    assert run_summary(classified) == CLASSIFIED_RUN
    for metric, text in CLASSIFIED_RUN_METRICS.items():
        assert run_summary(classified, metric=_metric(metric), metric_name=metric) == text
        assert repr(key_metrics(summary, _metric(metric))) == CLASSIFIED_KEY_METRICS[metric]
    assert repr(summary.overall()) == CLASSIFIED_OVERALL
    assert repr(_figure_data(summary)) == CLASSIFIED_FIGURES


def test_a_regressors_output_reads_as_it_did(regressed):
    summary = read_output_dir(regressed)
    assert summary.task == "regression"
    assert _table(summary) == REGRESSED_TABLE
    assert _curves(summary) == REGRESSED_CURVES
    assert run_summary(regressed) == REGRESSED_RUN
    for metric, text in REGRESSED_RUN_METRICS.items():
        assert run_summary(regressed, metric=_metric(metric), metric_name=metric) == text
        assert repr(key_metrics(summary, _metric(metric))) == REGRESSED_KEY_METRICS[metric]
    assert repr(summary.overall()) == REGRESSED_OVERALL
    assert repr(_figure_data(summary)) == REGRESSED_FIGURES


def test_a_reader_that_read_part_of_the_output_sums_it_up_the_same(classified):
    reader = OutputReader(classified)
    (classified / "predictions" / "part-b-0-0.jsonl").rename(classified / "later")
    reader.read_new()  # the first files, while the run still writes
    (classified / "later").rename(classified / "predictions" / "part-b-0-0.jsonl")
    summary = reader.summary()
    assert _table(summary) == CLASSIFIED_TABLE
    assert _curves(summary) == CLASSIFIED_CURVES


def test_keys_whose_hashes_are_equal_stay_apart(monkeypatch):
    """Every name hashed alike, and the sorted index built after a few keys: each key
    is still found by its own name."""
    monkeypatch.setattr(keys_module, "hash", lambda name: 42, raising=False)
    monkeypatch.setattr(keys_module, "_SORT_AFTER", 4)
    table = KeyTable()
    keys = ["a", 1, "1", 1.0, True, "é", "\ud800", [1], -0.0, 0.0, 10**30, "b", "c"]
    first = table.numbers(keys)
    assert first == list(range(len(keys)))
    assert table.numbers(list(reversed(keys))) == list(reversed(first))
    assert [table.text(n) for n in first] == [json.dumps(k) for k in keys]
    assert [table.find(json.dumps(k)) for k in keys] == first
    assert table.key(first[3]) == 1.0 and table.key(first[6]) == "\ud800"
    assert table.find('"zz"') is None and table.find("not json") is None


def test_a_summary_holds_a_few_bytes_a_prediction(tmp_path):
    """What a summary of 40,000 predictions over 20,000 keys holds: 1,000 bytes a key
    and more as tuples and dicts; now under 150 bytes a prediction."""
    import tracemalloc

    rows = [_prediction(f"user-{i % 20_000}", i, i % 3 == 0, i % 2 == 0, i // 20_000)
            for i in range(40_000)]  # fmt: skip
    _write(tmp_path, "predictions", "part-0-0.jsonl", rows)
    tracemalloc.start()
    try:
        summary = read_output_dir(tmp_path)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.counts["predictions"] == 40_000 and len(summary.keys) == 20_000
    assert held / 40_000 < 150
    assert not math.isnan(summary.metrics()[0])


# What the summary printed before it held outputs in columns (see the docstring).

CLASSIFIED_TABLE = (
    "riverflink output OUT: 23 predictions, 6 delayed labels learned, 6 alerts (3 on features),"
    " 2 rejected; 11 keys\naccuracy over all labeled predictions (prequential): 0.6667\n\nkey  "
    "                      records   labeled  accuracy  alerts\n-------------------------------"
    '-------------------------------\n"a"                              7         6    0.6667   '
    '    1\n"b"                              4         2    0.5000       0\n7                  '
    '              4         4    0.5000       1\n"ü"                              2         2 '
    "   0.5000       0\n-0.0                             2         2    0.5000       0\ntrue   "
    '                          2         2    1.0000       0\n"c"                              '
    '1         1    1.0000       0\n"d"                              1         1    1.0000     '
    '  0\n2.5                              1         1    1.0000       0\n"only-alerted"       '
    '            0         0         -       1\n... and 1 more keys\n\nbest key:  "c" (accuracy'
    " 1.0000, 1 labeled)\nworst key: 7 (accuracy 0.5000, 4 labeled)\n\nrejected by reason:\n   "
    "      1  invalid JSON\n         1  key field … is missing or null"
)

CLASSIFIED_TABLE_3 = (
    "riverflink output OUT: 23 predictions, 6 delayed labels learned, 6 alerts (3 on features),"
    " 2 rejected; 11 keys\naccuracy over all labeled predictions (prequential): 0.6667\n\nkey  "
    "                      records   labeled  accuracy  alerts\n-------------------------------"
    '-------------------------------\n"a"                              7         6    0.6667   '
    '    1\n"b"                              4         2    0.5000       0\n7                  '
    '              4         4    0.5000       1\n... and 8 more keys\n\nbest key:  "c" (accura'
    "cy 1.0000, 1 labeled)\nworst key: 7 (accuracy 0.5000, 4 labeled)\n\nrejected by reason:\n "
    "        1  invalid JSON\n         1  key field … is missing or null"
)

CLASSIFIED_CURVES = (
    "{'\"a\"': {'key': 'a', 'records': 7, 'scores': [(0, 1.0), (1, 0.0), (5, 1.0), (4, "
    "0.0), (6, 1.0), (2, 1.0)], 'pairs': [(0, True, True), (1, True, False), (5, True, True), ("
    "4, False, True), (6, True, True), (2, True, True)], 'alerts': [1], 'feature_alerts': {'f1'"
    ": [4, 5]}, 'delayed': 1}, '7': {'key': 7, 'records': 4, 'scores': [(2, 1.0), (1, 0.0), (0,"
    " 1.0), (3, 0.0)], 'pairs': [(2, 'x', 'x'), (1, 'x', 'y'), (0, 'x', 'x'), (3, 'y', 'x')], '"
    "alerts': [2], 'feature_alerts': {}, 'delayed': 3}, '\"\\\\u00fc\"': {'key': 'ü', "
    "'records': 2, 'scores': [(0, 1.0), (1, 0.0)], 'pairs': [(0, 'y', 'y'), (1, 'y', 'x')], 'al"
    "erts': [], 'feature_alerts': {'f2': [1]}, 'delayed': 0}, '\"b\"': {'key': 'b', "
    "'records': 4, 'scores': [(0, 0.0), (3, 1.0)], 'pairs': [(0, 'x', None), (3, 'y', 'y')], 'a"
    "lerts': [], 'feature_alerts': {}, 'delayed': 1}, 'true': {'key': True, 'records': 2, 'scor"
    "es': [(0, 1.0), (1, 1.0)], 'pairs': [(0, 1, 1), (1, 1, True)], 'alerts': [], 'feature_aler"
    "ts': {}, 'delayed': 0}, '2.5': {'key': 2.5, 'records': 1, 'scores': [(0, 1.0)], 'pairs': ["
    "(0, 'x', 'x')], 'alerts': [], 'feature_alerts': {}, 'delayed': 0}, '-0.0': {'key': -0.0, '"
    "records': 2, 'scores': [(0, 0.0), (1, 1.0)], 'pairs': [(0, False, True), (1, True, True)],"
    " 'alerts': [], 'feature_alerts': {}, 'delayed': 0}, '\"c\"': {'key': 'c', 'reco"
    "rds': 1, 'scores': [(0, 1.0)], 'pairs': [(0, False, 0)], 'alerts': [], 'feature_alerts': {"
    "}, 'delayed': 0}, '\"d\"': {'key': 'd', 'records': 1, 'scores': [(0, 1.0)], 'pa"
    "irs': [(0, 'z', 'z')], 'alerts': [], 'feature_alerts': {}, 'delayed': 0}, '\"zz"
    "\"': {'key': 'zz', 'records': 0, 'scores': [], 'pairs': [], 'alerts': [], 'fe"
    "ature_alerts': {}, 'delayed': 1}, '\"only-alerted\"': {'key': 'only-alerted', 'rec"
    "ords': 0, 'scores': [], 'pairs': [], 'alerts': [3], 'feature_alerts': {}, 'delayed': 0}}"
)

CLASSIFIED_RUN = (
    "riverflink: the output answers 31 input lines: 23 predictions, 6 delayed labels learned, 2"
    " rejected; 6 drift alerts (3 on features); 1 pseudo-labels learned; 11 keys\nriverflink: a"
    'ccuracy per key: best "c" 1.0000, worst 7 0.5000 (over 9 keys with labels)'
)

CLASSIFIED_RUN_METRICS = {
    "metrics.Accuracy()": (
        "riverflink: the output answers 31 input lines: 23 predictions, 6 delayed labels learne"
        "d, 2 rejected; 6 drift alerts (3 on features); 1 pseudo-labels learned; 11 keys\nriver"
        'flink: metrics.Accuracy() per key: best "b" 1.0000, worst 7 0.5000 (over 9 keys with l'
        "abels)"
    ),
    "metrics.MacroF1()": (
        "riverflink: the output answers 31 input lines: 23 predictions, 6 delayed labels learne"
        "d, 2 rejected; 6 drift alerts (3 on features); 1 pseudo-labels learned; 11 keys\nriver"
        'flink: metrics.MacroF1() per key: best "b" 1.0000, worst 7 0.3333 (over 9 keys with la'
        "bels)"
    ),
    "utils.Rolling(metrics.Accuracy(), window_size=2)": (
        "riverflink: the output answers 31 input lines: 23 predictions, 6 delayed labels learne"
        "d, 2 rejected; 6 drift alerts (3 on features); 1 pseudo-labels learned; 11 keys\nriver"
        'flink: utils.Rolling(metrics.Accuracy(), window_size=2) per key: best "a" 1.0000, wors'
        "t 7 0.5000 (over 9 keys with labels)"
    ),
}

CLASSIFIED_KEY_METRICS = {
    "metrics.Accuracy()": (
        "{'\"a\"': 0.6666666666666666, '7': 0.5, '\"\\\\u00fc\"': 0.5, '\"b\"': 1.0, 'true'"
        ": 1.0, '2.5': 1.0, '-0.0': 0.5, '\"c\"': 1.0, '\"d\"': 1.0}"
    ),
    "metrics.MacroF1()": (
        "{'\"a\"': 0.4000000000000001, '7': 0.3333333333333333, '\"\\\\u00fc\"': 0.3333333333"
        "333333, '\"b\"': 1.0, 'true': 1.0, '2.5': 1.0, '-0.0': 0.3333333333333333, '\"c\""
        "': 1.0, '\"d\"': 1.0}"
    ),
    "utils.Rolling(metrics.Accuracy(), window_size=2)": (
        "{'\"a\"': 1.0, '7': 0.5, '\"\\\\u00fc\"': 0.5, '\"b\"': 1.0, 'true': 1.0, '2.5':"
        " 1.0, '-0.0': 0.5, '\"c\"': 1.0, '\"d\"': 1.0}"
    ),
}

CLASSIFIED_OVERALL = "0.6666666666666666"

CLASSIFIED_FIGURES = (
    "[('Learning curve over 11 keys: accuracy 0.667 overall', 'all keys (accuracy of prediction"
    "s at n, bins of 1)', [[0.0, 0.7777777777777778], [1.0, 0.4], [2.0, 1.0], [3.0, 0.5], [4.0,"
    " 0.0], [5.0, 1.0], [6.0, 1.0]]), ('Learning curve over 11 keys: accuracy 0.667 overall', '"
    "drift alerts (3), at the n of their key', [[1.0, 0.0], [1.0, 1.0]]), ('Learning curve over"
    " 11 keys: accuracy 0.667 overall', '_child2', [[2.0, 0.0], [2.0, 1.0]]), ('Learning curve "
    "over 11 keys: accuracy 0.667 overall', '_child3', [[3.0, 0.0], [3.0, 1.0]]), ('Learning cu"
    "rve over 11 keys: accuracy 0.667 overall', \"feature 'f1' drifted (2)\", [[4.0, 0.05], [5"
    ".0, 0.05]]), ('Learning curve over 11 keys: accuracy 0.667 overall', \"feature 'f2' dri"
    "fted (1)\", [[1.0, 0.1]]), ('key \"a\": accuracy 0.667, 1 alerts, 2 on features', '_child0"
    "', [[0.0, 1.0], [1.0, 0.5], [2.0, 0.6666666666666666], [4.0, 0.5], [5.0, 0.6], [6.0, 0.666"
    "6666666666666]]), ('key \"a\": accuracy 0.667, 1 alerts, 2 on features', 'drift alert', "
    '[[1.0, 0.0], [1.0, 1.0]]), (\'key "a": accuracy 0.667, 1 alerts, 2 on features\', "feature'
    " 'f1' drifted (2)\", [[4.0, 0.05], [5.0, 0.05]]), ('key \"b\": accuracy 0.500, 0 alerts',"
    " '_child0', [[0.0, 0.0], [3.0, 0.5]]), ('key 7: accuracy 0.500, 1 alerts', '_child0', [[0."
    "0, 1.0], [1.0, 0.5], [2.0, 0.6666666666666666], [3.0, 0.5]]), ('key 7: accuracy 0.500, 1 a"
    "lerts', 'drift alert', [[2.0, 0.0], [2.0, 1.0]]), ('key \"ü\": accuracy 0.500, 0 alerts,"
    " 1 on features', '_child0', [[0.0, 1.0], [1.0, 0.5]]), ('key \"ü\": accuracy 0.500, 0 al"
    "erts, 1 on features', \"feature 'f2' drifted (1)\", [[1.0, 0.05]])]"
)

REGRESSED_TABLE = (
    "riverflink output OUT: 12 predictions, 3 delayed labels learned, 2 alerts (1 on features),"
    " 0 rejected; 4 keys\nMAE over all labeled predictions (prequential): 0.5100\n\nkey        "
    "                records   labeled       MAE  alerts\n-------------------------------------"
    '-------------------------\n"r"                              6         6    0.3083       1'
    '\n"s"                              3         2    1.2500       0\n"t"                     '
    "         2         1    0.7500       0\n3                                1         1    0."
    '0000       0\n\nbest key:  3 (MAE 0.0000, 1 labeled)\nworst key: "s" (MAE 1.2500, 2 labele'
    "d)"
)

REGRESSED_CURVES = (
    "{'\"r\"': {'key': 'r', 'records': 6, 'scores': [(0, 0.19999999999999998), (1, 0.25"
    "), (3, 5.551115123125783e-17), (5, 0.6), (4, 0.39999999999999997), (2, 0.4)], 'pairs': [(0"
    ", 0.3, 0.1), (1, 1, 1.25), (3, 0.3, 0.30000000000000004), (5, 0.1, 0.7), (4, 0.6, 0.2), (2"
    ", 0.1, 0.5)], 'alerts': [4], 'feature_alerts': {}, 'delayed': 1}, '\"s\"': {'key':"
    " 's', 'records': 3, 'scores': [(0, 1), (2, 1.5)], 'pairs': [(0, 3, 2), (1, 2.0, None), (2,"
    " 4, 2.5)], 'alerts': [], 'feature_alerts': {}, 'delayed': 1}, '\"t\"': {'key': 't"
    "', 'records': 2, 'scores': [(0, 0.75)], 'pairs': [(0, 8.5, 7.75), (1, 1.5, nan)], 'alerts'"
    ": [], 'feature_alerts': {'x': [1]}, 'delayed': 1}, '3': {'key': 3, 'records': 1, 'scores':"
    " [(0, 0.0)], 'pairs': [(0, 1.0, 1.0)], 'alerts': [], 'feature_alerts': {}, 'delayed': 0}}"
)

REGRESSED_RUN = (
    "riverflink: the output answers 15 input lines: 12 predictions, 3 delayed labels learned, 0"
    " rejected; 2 drift alerts (1 on features); 4 keys\nriverflink: MAE per key: best 3 0.0000,"
    ' worst "s" 1.2500 (over 4 keys with labels)'
)

REGRESSED_RUN_METRICS = {
    "metrics.MAE()": (
        "riverflink: the output answers 15 input lines: 12 predictions, 3 delayed labels learne"
        "d, 0 rejected; 2 drift alerts (1 on features); 4 keys\nriverflink: metrics.MAE() per k"
        'ey: best 3 0.0000, worst "s" 1.2500 (over 3 keys with labels)'
    ),
    "metrics.RMSE()": (
        "riverflink: the output answers 15 input lines: 12 predictions, 3 delayed labels learne"
        "d, 0 rejected; 2 drift alerts (1 on features); 4 keys\nriverflink: metrics.RMSE() per "
        'key: best 3 0.0000, worst "s" 1.2748 (over 3 keys with labels)'
    ),
    "utils.Rolling(metrics.MAE(), window_size=2)": (
        "riverflink: the output answers 15 input lines: 12 predictions, 3 delayed labels learne"
        "d, 0 rejected; 2 drift alerts (1 on features); 4 keys\nriverflink: utils.Rolling(metri"
        'cs.MAE(), window_size=2) per key: best 3 0.0000, worst "s" 1.2500 (over 3 keys with la'
        "bels)"
    ),
}

REGRESSED_KEY_METRICS = {
    "metrics.MAE()": "{'\"r\"': 0.30833333333333335, '\"s\"': 1.25, '\"t\"': nan, '3': 0.0}",
    "metrics.RMSE()": (
        "{'\"r\"': 0.3611324780003408, '\"s\"': 1.2747548783981961, '\"t\"': nan, '3': 0.0}"
    ),
    "utils.Rolling(metrics.MAE(), window_size=2)": (
        "{'\"r\"': 0.5, '\"s\"': 1.25, '\"t\"': nan, '3': 0.0}"
    ),
}

REGRESSED_OVERALL = "0.51"

REGRESSED_FIGURES = (
    "[('Learning curve over 4 keys: MAE 0.510 overall', 'all keys (MAE of predictions at n, bin"
    "s of 1)', [[0.0, 0.4875], [1.0, 0.25], [2.0, 0.95], [3.0, 5.551115123125783e-17], [4.0, 0."
    "39999999999999997], [5.0, 0.6]]), ('Learning curve over 4 keys: MAE 0.510 overall', 'drift"
    " alerts (1), at the n of their key', [[4.0, 0.0], [4.0, 1.0]]), ('Learning curve over 4 ke"
    "ys: MAE 0.510 overall', \"feature 'x' drifted (1)\", [[1.0, 0.05]]), ('key \"r\": MAE 0.30"
    "8, 1 alerts', '_child0', [[0.0, 0.19999999999999998], [1.0, 0.22499999999999998], [2.0, 0."
    "2833333333333333], [3.0, 0.21250000000000002], [4.0, 0.25], [5.0, 0.30833333333333335]]), "
    "('key \"r\": MAE 0.308, 1 alerts', 'drift alert', [[4.0, 0.0], [4.0, 1.0]]), ('key \"s\":"
    " MAE 1.250, 0 alerts', '_child0', [[0.0, 1.0], [2.0, 1.25]]), ('key \"t\": MAE 0.750, 0 "
    "alerts, 1 on features', '_child0', [[0.0, 0.75]]), ('key \"t\": MAE 0.750, 0 alerts, 1 o"
    "n features', \"feature 'x' drifted (1)\", [[1.0, 0.05]]), ('key 3: MAE 0.000, 0 alerts'"
    ", '_child0', [[0.0, 0.0]])]"
)
