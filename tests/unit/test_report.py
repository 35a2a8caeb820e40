"""`riverflink report` on small known outputs: figures, page, and numbers computed by hand."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from riverflink.cli import main
from riverflink.results.outputs import read_output_dir, reason_group
from riverflink.results.report import write_report
from riverflink.results.summary import summary_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(directory: Path, name: str, rows: list, part: str = "part-0-0.jsonl") -> None:
    (directory / name).mkdir(parents=True, exist_ok=True)
    with open(directory / name / part, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


@pytest.fixture
def classified(tmp_path):
    """Key a: 4 labeled (3 right), key 7: 2 labeled late (1 right) + 1 unlabeled; rejections."""
    out = tmp_path / "out"
    predictions = [
        {"key": "a", "id": 1, "y_pred": True, "y_true": True, "n": 0},
        {"key": "a", "id": 2, "y_pred": True, "y_true": False, "n": 1},
        {"key": "a", "id": 3, "y_pred": False, "y_true": False, "n": 2},
        {"key": 7, "id": "t1", "y_pred": False, "y_true": None, "n": 0},
        {"key": 7, "id": "t2", "y_pred": True, "y_true": None, "n": 1},
        {"key": 7, "id": "t3", "y_pred": True, "y_true": None, "n": 2},
    ]
    _write(out, "predictions", predictions[:3], "part-a-0-0.jsonl")
    _write(out, "predictions", predictions[3:], "part-a-1-0.jsonl")
    # a restored run wrote the rest into new part files
    _write(
        out,
        "predictions",
        [{"key": "a", "id": 4, "y_pred": 1, "y_true": 1, "n": 3}],
        "part-b-0-0.jsonl",
    )
    _write(
        out,
        "outcomes",
        [
            {"key": 7, "id": "t1", "y_pred": False, "y_true": False, "delay_s": 1.5},
            {"key": 7, "id": "t2", "y_pred": True, "y_true": False, "delay_s": 0.2},
        ],
    )
    _write(
        out,
        "alerts",
        [
            {
                "key": "a",
                "id": 2,
                "n": 1,
                "detector": "drift.ADWIN()",
                "action": "alert",
                "metric": 0.5,
            }
        ],
    )
    _write(
        out,
        "rejected",
        [
            {
                "raw": "{",
                "error": "invalid JSON: Expecting property name: line 1 column 2 (char 1)",
            },
            {"raw": "[]", "error": "invalid JSON: Expecting value: line 1 column 1 (char 0)"},
            {"raw": "{}", "error": "key field 'key' is missing or null"},
        ],
    )
    # in progress when the first run was killed: not output
    (out / "predictions" / ".part-c-0-0.jsonl.inprogress").write_text(
        json.dumps({"key": "a", "id": 99, "y_pred": True, "y_true": False, "n": 9}) + "\n"
    )
    return out


def test_summary_numbers_equal_a_direct_computation(classified):
    summary = read_output_dir(classified)
    assert summary.task == "classification"
    assert summary.counts == {"predictions": 7, "outcomes": 2, "alerts": 1, "rejected": 3}
    a, seven = summary.keys['"a"'], summary.keys["7"]
    assert (a.records, a.labeled, a.alerts) == (4, 4, [1])
    assert a.metric() == pytest.approx(3 / 4)
    assert (seven.records, seven.labeled, seven.delayed) == (3, 2, 2)
    assert seven.metric() == pytest.approx(1 / 2)
    assert sorted(seven.scores) == [(0, 1.0), (1, 0.0)]  # placed at their prediction's n
    assert summary.overall() == pytest.approx(4 / 6)
    assert [c.key for c in summary.ranked()] == ["a", 7]
    assert summary.rejected == {"invalid JSON": 2, "key field … is missing or null": 1}

    table = summary_table(summary)
    assert "7 predictions, 2 delayed labels learned, 1 alerts, 3 rejected; 2 keys" in table
    assert "accuracy over all labeled predictions (prequential): 0.6667" in table
    assert re.search(r'best key:\s+"a" \(accuracy 0.7500', table)
    assert re.search(r"worst key: 7 \(accuracy 0.5000", table)
    assert re.search(r"2\s+invalid JSON", table)


def test_regression_scores_are_absolute_errors(tmp_path):
    out = tmp_path / "out"
    _write(
        out,
        "predictions",
        [
            {"key": "r", "id": 1, "y_pred": 0.0, "y_true": 2.0, "n": 0},
            {"key": "r", "id": 2, "y_pred": 1.5, "y_true": 1.0, "n": 1},
        ],
    )
    summary = read_output_dir(out)
    assert summary.task == "regression" and summary.metric_name == "MAE"
    assert summary.keys['"r"'].metric() == pytest.approx(1.25)
    assert not summary.higher_is_better


def test_rolling_curve_is_the_mean_of_the_last_window():
    from riverflink.results.outputs import KeyCurve

    curve = KeyCurve("k", scores=[(2, 1.0), (0, 0.0), (1, 1.0), (3, 0.0)])
    assert curve.rolling(2) == ([0, 1, 2, 3], [0.0, 0.5, 1.0, 0.5])


def test_report_writes_valid_pngs(classified, tmp_path):
    table, written = write_report(classified, png_dir=tmp_path / "png", keys=2)
    names = sorted(p.name for p in written)
    assert names == ["keys.png", "overall.png", "rejected.png"]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "png" / "overall.png")
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert "best key" in table


def test_report_html_embeds_the_figures(classified):
    table, written = write_report(classified)
    assert written == [classified / "report.html"]
    page = written[0].read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert "best key" in page and "<script" not in page


def test_report_command(classified, tmp_path, capsys):
    assert main(["report", str(classified), "--html", str(tmp_path / "r.html"), "--keys", "1"]) == 0
    out, err = capsys.readouterr()
    assert "best key" in out and f"wrote {tmp_path / 'r.html'}" in err
    assert (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("y_pred", "y_true", "task"),
    [
        ([True, False, True], [1, 0, 0], "classification"),  # a binary classifier on 0/1
        ([2, 0, 1], [2, 1, 1], "classification"),  # a multi-class one on integers
        ([0.5, 1.0, 2.5], [1, 1, 2], "regression"),  # a regressor on whole numbers
        ([0.1, 0.9, 0.4], [True, False, True], "unsupervised"),  # anomaly scores
    ],
)
def test_the_task_follows_what_the_predictions_are(tmp_path, y_pred, y_true, task):
    out = tmp_path / "out"
    rows = [
        {"key": "k", "id": i, "y_pred": p, "y_true": t, "n": i}
        for i, (p, t) in enumerate(zip(y_pred, y_true))
    ]
    _write(out, "predictions", rows)
    summary = read_output_dir(out)
    assert summary.task == task
    table = summary_table(summary)  # every task has a table
    if task == "classification":
        right = sum(p == t for p, t in zip(y_pred, y_true)) / 3
        assert f"accuracy over all labeled predictions (prequential): {right:.4f}" in table
    elif task == "unsupervised":
        assert "over all labeled predictions" not in table


def test_a_run_summary_scores_no_model_that_predicts_no_label(tmp_path):
    from riverflink.results.summary import run_summary

    out = tmp_path / "out"
    _write(out, "predictions", [{"key": "k", "id": 1, "y_pred": 1, "y_true": 1, "n": 0}])
    assert "accuracy per key" in run_summary(out)
    assert "per key" not in run_summary(out, scored=False)  # a clusterer's cluster ids


def test_report_on_something_else_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no such output directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a riverflink output directory" in capsys.readouterr().err
    (tmp_path / "in.jsonl").write_text("{}\n")
    assert main(["report", str(tmp_path / "in.jsonl")]) == 2
    assert "a file, not an output directory" in capsys.readouterr().err


def test_unsupervised_output_has_no_metric_but_still_reports(tmp_path):
    out = tmp_path / "out"
    _write(out, "predictions", [{"key": "x", "id": 1, "y_pred": 0.3, "y_true": None, "n": 0}])
    table, written = write_report(out, png_dir=tmp_path / "png")
    assert [p.name for p in written] == ["overall.png"]
    assert "1 predictions" in table


def test_reason_groups_drop_particulars():
    assert reason_group("the model raised ValueError: bad") == "the model raised ValueError"
    assert reason_group("invalid UTF-8 at byte 12: invalid start byte") == "invalid UTF-8 at byte …"


def test_committed_lines_reads_chunks_with_blank_lines_and_odd_ones(tmp_path, monkeypatch):
    from riverflink.results import part_files

    monkeypatch.setattr(part_files, "_CHUNK", 3)  # chunk boundaries inside the file
    part = tmp_path / "predictions" / "part-0-0.jsonl"
    part.parent.mkdir()
    rows = [{"key": i, "n": i} for i in range(8)]
    text = [json.dumps(row) + "\n" for row in rows]
    text[2:2] = ["\n", "  \n", "\n", "\n"]  # a whole chunk of blank lines, then more
    # A line that is not one object: read as itself, not spliced into its neighbours.
    text.append("1, 2\n")
    part.write_text("".join(text))
    with pytest.raises(json.JSONDecodeError):
        list(part_files.committed_lines(tmp_path / "predictions"))
    part.write_text("".join(text[:-1]) + '"a"\n[1]\n')
    assert list(part_files.committed_lines(tmp_path / "predictions")) == [*rows, "a", [1]]


def test_committed_lines_gives_what_pythons_parser_gives(tmp_path, monkeypatch):
    from riverflink.results import part_files

    monkeypatch.setattr(part_files, "_CHUNK", 4)
    lines = [
        # orjson reads this chunk: values as Python's parser gives them
        '{"key": -0.0, "y_pred": 0.1, "y_true": 5e-324, "n": 2, "n": 3}',
        '{"key": "\\u00e9\\ud83d\\ude00 é", "y_pred": 1.7976931348623157e308, "n": 4}',
        '{"key": 999999999999999999, "y_pred": -922337203685477580, "y_true": 1E2}',
        '{"key": [1, {"a": null}], "y_pred": 9007199254740993, "y_true": 0.30000000000000004}',
        # an integer below 64 bits: orjson would give a float; Python's parser reads it
        '{"key": "k1", "id": 1, "y_pred": true, "y_true": false, "n": 0}',
        '{"key": -9223372036854775809, "y_pred": 2.2250738585072011e-308}',
        '{"key": "k2", "y_pred": 123456789.123456789e-5, "y_true": 1.0}',
        '{"key": 12345678901234567890123, "n": 1}',
        # what orjson refuses: NaN, infinities, a lone surrogate
        '{"key": "\\ud800", "y_pred": NaN, "y_true": Infinity, "n": 5}',
        '{"key": "k3", "y_pred": 1e400, "y_true": -Infinity}',
    ]
    part = tmp_path / "predictions" / "part-0-0.jsonl"
    part.parent.mkdir()
    part.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    got = list(part_files.committed_lines(tmp_path / "predictions"))
    want = [json.loads(line) for line in lines]
    # repr tells 1 from 1.0 and -0.0 from 0.0, and shows NaN and big integers
    assert [repr(row) for row in got] == [repr(row) for row in want]
    assert [[type(v) for v in row.values()] for row in got] == [
        [type(v) for v in row.values()] for row in want
    ]


def test_a_reader_reads_each_committed_file_once_and_gives_what_a_whole_read_gives(
    classified, tmp_path
):
    from riverflink.results.outputs import OutputReader

    reader = OutputReader(classified)
    assert reader.read_new() == 6  # predictions x3, outcomes, alerts, rejected
    assert reader.read_new() == 0
    # meanwhile a subtask commits a file (in-progress files are not read)
    _write(classified, "predictions", [{"key": "b", "id": 9, "y_pred": 2, "y_true": 3, "n": 0}])
    _write(classified, "predictions", [{"key": "c", "n": 0}], ".part-x.jsonl.inprogress")
    assert reader.read_new() == 1
    _write(classified, "alerts", [{"key": "b", "n": 0}])  # a file that changed: read again
    assert reader.read_new() == 1
    assert reader.read_new() == 0

    def plain(summary):
        return {slot: vars(curve) for slot, curve in summary.keys.items()}

    read, whole = reader.summary(), read_output_dir(classified)
    assert plain(read) == plain(whole) and '"c"' not in read.keys
    assert (read.task, read.counts, read.rejected) == (whole.task, whole.counts, whole.rejected)
    assert summary_table(read) == summary_table(whole)
    assert read.keys['"b"'].pairs == [(0, 3, 2)] and read.keys['"b"'].alerts == [0]
    (classified / "predictions" / "part-0-0.jsonl").unlink()  # gone: no longer counted
    assert reader.summary().keys['"b"'].pairs == []


def test_summaries_show_long_keys_cut_short(tmp_path):
    """A 3 MB key was printed whole, twice, in the end-of-run summary."""
    from riverflink.results.summary import SHOWN_KEY_CHARS, run_summary

    long_key = "k" * 100_000
    rows = [
        {"key": long_key, "id": 1, "y_pred": True, "y_true": True, "n": 0},
        {"key": "short", "id": 2, "y_pred": True, "y_true": False, "n": 0},
    ]
    _write(tmp_path, "predictions", rows)
    for text in (run_summary(tmp_path), summary_table(read_output_dir(tmp_path))):
        assert "short" in text and "kkk..." in text
        assert max(len(line) for line in text.splitlines()) < SHOWN_KEY_CHARS + 120


def test_feature_drift_alerts_are_counted_and_marked_per_feature(classified):
    """--feature-drift alerts name their feature: the report marks each feature apart,
    and error-drift alerts ("feature": null) stay the drift alerts they were."""
    from riverflink.results.report import _keys_figure, _overall_figure, _pyplot

    alert = {"detector": "drift.ADWIN()", "action": "alert"}
    _write(
        classified,
        "alerts",
        [
            {"key": "a", "id": 1, "n": 0, **alert, "feature": "x1"},
            {"key": "a", "id": 3, "n": 2, **alert, "feature": "x1"},
            {"key": 7, "id": "t2", "n": 1, **alert, "feature": "x2"},
            {"key": "a", "id": 4, "n": 3, **alert, "metric": 0.5, "feature": None},
        ],
        "part-b-1-0.jsonl",
    )
    summary = read_output_dir(classified)
    assert (summary.counts["alerts"], summary.counts["feature_alerts"]) == (5, 3)
    a, seven = summary.keys['"a"'], summary.keys["7"]
    assert (a.alerts, a.feature_alerts) == ([1, 3], {"x1": [0, 2]})
    assert (seven.alerts, seven.feature_alerts) == ([], {"x2": [1]})
    assert "5 alerts (3 on features)" in summary_table(summary)

    plt = _pyplot()
    labels = _overall_figure(summary, plt).axes[0].get_legend_handles_labels()[1]
    assert "feature 'x1' drifted (2)" in labels and "feature 'x2' drifted (1)" in labels
    key_axes = _keys_figure(summary, plt, 2).axes
    key_a = next(ax for ax in key_axes if ax.get_title().startswith('key "a"'))
    assert key_a.get_title().endswith("2 alerts, 2 on features")
    assert "feature 'x1' drifted (2)" in key_a.get_legend_handles_labels()[1]
