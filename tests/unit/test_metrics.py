"""--metric: kept per key, updated prequentially, equal to River's metric on the key's stream."""

from __future__ import annotations

import copy
import json
import math

import pytest
from river import drift, metrics, utils

from riverflink.operators.learner import OnlineLearner
from riverflink.operators.records import parse_line
from riverflink.results.outputs import read_output_dir
from riverflink.results.progress import count_lines
from riverflink.results.summary import key_metrics, run_summary
from riverflink.state.envelope import dumps, loads
from riverflink.state.spec import SpecError
from tests.reference import reference_run
from tests.streams import delayed_label_stream
from tests.unit.test_delayed_labels import CLASSIFIER, make_classifier, run


def _river_metric_per_key(records, outputs, make_metric):
    """River's metric over each key's (label, earlier prediction) pairs, in label order."""
    predicted = {(json.dumps(p["key"]), json.dumps(p["id"])): p for p in outputs["predictions"]}
    per_key: dict = {}
    for record in records:
        if record.get("y") is None:
            continue
        slot = json.dumps(record["key"])
        prediction = predicted.get((slot, json.dumps(record["id"])))
        if prediction is None or prediction["y_pred"] is None:
            continue
        if "f0" not in record and prediction["y_true"] is not None:
            continue  # a label for an id that came with its label: rejected
        per_key.setdefault(slot, make_metric()).update(record["y"], prediction["y_pred"])
    return {slot: m.get() for slot, m in per_key.items()}


@pytest.mark.parametrize(
    "spec, make_metric",
    [
        (None, metrics.Accuracy),
        ("metrics.F1()", metrics.F1),
        (
            "utils.Rolling(metrics.Accuracy(), window_size=50)",
            lambda: utils.Rolling(metrics.Accuracy(), window_size=50),
        ),
    ],
)
def test_each_key_keeps_rivers_metric_over_its_labeled_predictions(spec, make_metric):
    records = delayed_label_stream(2500, orphans=0)
    learner = OnlineLearner(model_spec=CLASSIFIER, drift_spec="drift.ADWIN()", metric_spec=spec)
    states, out = run(learner, records)
    expected = _river_metric_per_key(records, out, make_metric)
    assert {slot: s.metric.get() for slot, s in states.items()} == expected
    assert len(expected) == 3


def test_alerts_carry_the_metric_as_river_computes_it():
    records = delayed_label_stream(3000, orphans=0)
    learner = OnlineLearner(
        model_spec=CLASSIFIER, drift_spec="drift.ADWIN()", metric_spec="metrics.F1()"
    )
    _, out = run(learner, records)
    want = reference_run(
        records,
        make_classifier,
        make_detector=drift.ADWIN,
        detector_spec="drift.ADWIN()",
        make_metric=metrics.F1,
    )
    assert out["alerts"] == want["alerts"] and out["alerts"]
    assert all(isinstance(a["metric"], float) for a in out["alerts"])


def test_regressors_default_to_mae():
    learner = OnlineLearner(model_spec="linear_model.LinearRegression()")
    state, first = learner.step(None, parse_line('{"key": "a", "x": 1.0, "y": 2.0}'))
    state, second = learner.step(state, parse_line('{"key": "a", "x": 1.0, "y": 4.0}'))
    expected = metrics.MAE()
    expected.update(2.0, first[0].y_pred)
    expected.update(4.0, second[0].y_pred)
    assert isinstance(state.metric, metrics.MAE) and state.metric_spec == "metrics.MAE()"
    assert state.metric.get() == expected.get() > 0


def test_the_metric_survives_the_envelope_and_a_new_spec_starts_over():
    learner = OnlineLearner(model_spec=CLASSIFIER)
    state, _ = learner.step(None, parse_line('{"key": "a", "x": 1.0, "y": true}'))
    state = loads(dumps(state))
    assert state.metric_spec == "metrics.Accuracy()" and state.metric.get() == 0.0
    other = OnlineLearner(model_spec=CLASSIFIER, metric_spec="metrics.F1()")
    state, _ = other.step(state, parse_line('{"key": "a", "x": 1.0, "y": true}'))
    assert isinstance(state.metric, metrics.F1) and state.metric_spec == "metrics.F1()"


def test_rolling_metrics_keep_their_window_per_key():
    learner = OnlineLearner(
        model_spec=CLASSIFIER, metric_spec="utils.Rolling(metrics.Accuracy(), window_size=2)"
    )
    state = learner.new_state()
    assert state.metric.window_size == 2
    assert state.metric is not learner.new_state().metric


def test_unsupervised_models_keep_no_metric_and_refuse_one():
    learner = OnlineLearner(model_spec="anomaly.HalfSpaceTrees(seed=1)")
    assert learner.new_state().metric is None
    with pytest.raises(SpecError, match="anomaly detector"):
        OnlineLearner(model_spec="anomaly.HalfSpaceTrees(seed=1)", metric_spec="metrics.MAE()")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("metrics.MAE()", "does not apply to a classifier"),
        ("metrics.ROCAUC()", "scores probabilities"),
        ("linear_model.LinearRegression()", "not a River metric"),
        ("__import__('os')", "metric spec"),
    ],
)
def test_bad_metric_specs_are_refused(spec, message):
    with pytest.raises(SpecError, match=message):
        OnlineLearner(model_spec=CLASSIFIER, metric_spec=spec)


def test_run_summary_names_best_and_worst_keys_by_the_metric(tmp_path):
    out = tmp_path / "out"
    (out / "predictions").mkdir(parents=True)
    rows = [{"key": "good", "id": i, "y_pred": True, "y_true": True, "n": i} for i in range(4)] + [
        {"key": "bad", "id": i, "y_pred": True, "y_true": i == 0, "n": i} for i in range(4)
    ]
    (out / "predictions" / "part-0-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = run_summary(out, metric=metrics.Accuracy(), metric_name="metrics.Accuracy()")
    assert "8 predictions" in text
    assert 'metrics.Accuracy() per key: best "good" 1.0000, worst "bad" 0.2500' in text
    mae_like = run_summary(out)  # no metric: the report's accuracy
    assert 'best "good" 1.0000, worst "bad" 0.2500' in mae_like
    assert read_output_dir(out).keys['"bad"'].pairs[0] == (0, True, True)
    unchanged = metrics.Accuracy()
    run_summary(out, metric=unchanged)
    assert unchanged.get() == 0.0  # the prototype is copied, never updated
    assert copy.deepcopy(unchanged).get() == 0.0


class _RiverAccuracy(metrics.Accuracy):
    """Accuracy through River's own update path (the summary counts a plain one directly)."""


@pytest.mark.parametrize(
    ("answers", "labels"),
    [
        ([True, False, True, None, False, True, True], [True, False]),  # None: skipped
        (["cat", "dog", "cat", "bird", None, "dog", "dog"], ["cat", "dog", "bird"]),
        ([1, 0, True, False, 2, 1, 0], [1, 0, False]),  # 1 == True, as in River's matrix
        ([None, None], [True]),  # no answers: 0.0, as River says
        ([1.5, 2.0, float("nan"), 2.0, 1.5, 0.0, -0.0], [1.5, 0.0, float("nan")]),  # River's path
    ],
)
def test_the_summarys_accuracy_is_rivers_to_the_last_bit(tmp_path, answers, labels):
    out = tmp_path / "out"
    (out / "predictions").mkdir(parents=True)
    rows = [
        {"key": f"k{i % 3}", "id": i, "y_pred": y_pred, "y_true": labels[i % len(labels)], "n": i}
        for i, y_pred in enumerate(answers * 11)
    ]
    (out / "predictions" / "part-0-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = read_output_dir(out)
    fast = key_metrics(summary, metrics.Accuracy())
    river = key_metrics(summary, _RiverAccuracy())
    assert fast == river or all(
        fast[k] == river[k] or (math.isnan(fast[k]) and math.isnan(river[k])) for k in river
    )
    assert fast.keys() == river.keys()
    name = "metrics.Accuracy()"
    assert run_summary(out, metric=metrics.Accuracy(), metric_name=name) == run_summary(
        out, metric=_RiverAccuracy(), metric_name=name
    )


def test_count_lines_skips_blank_lines_and_reads_a_last_line_without_newline(tmp_path):
    one = tmp_path / "a.jsonl"
    one.write_bytes(b'{"a": 1}\n\n  \n{"a": 2}\n{"a": 3}')
    two = tmp_path / "b.jsonl"
    two.write_bytes(b"x\n" * 300_000)
    assert count_lines([one]) == 3
    assert count_lines([one, two]) == 300_003


def test_the_progress_line_tells_start_up_from_shut_down():
    """After the job had run, an unanswered status read as "starting Flink"."""
    from riverflink.results.progress import ProgressLine

    class Rest:
        answers = [None, OSError("refused"), "RUNNING", OSError("refused")]

        def job_state(self):
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    line = ProgressLine(1, total=None, quiet=True)
    line.rest = Rest()
    assert [line._status() for _ in range(4)] == [
        "starting Flink",
        "starting Flink",
        "job running, no counts yet",
        "Flink stopping",
    ]


def test_on_a_terminal_the_progress_line_fits_its_width_and_leaves_nothing_stale():
    """A line wider than the terminal wraps, and each redraw then left a row behind; the
    last redraw stayed above the summary with stale counts."""
    import fcntl
    import os
    import struct
    import termios
    import time

    from riverflink.results.progress import ProgressLine

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    with os.fdopen(follower, "w") as terminal:
        line = ProgressLine(1, total=1_000_000, stream=terminal).start()
        time.sleep(1.3)  # one redraw a second
        line.stop()
    chunks = []
    while True:  # a pty hands written bytes over in pieces: read to its end
        try:
            chunk = os.read(leader, 10_000)
        except OSError:  # EIO: the terminal's other end is closed and all was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    shown = b"".join(chunks).decode()
    os.close(leader)
    redraws = [part for part in shown.split("\r") if part]
    assert redraws and redraws[0].startswith("riverflink: 0/1,000,000 lines")
    assert all(len(part.removesuffix("\x1b[K")) < 40 for part in redraws)
    assert shown.endswith("\r\x1b[K")  # the line cleared for the summary
