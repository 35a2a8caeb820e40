"""--savepoint-on-exit carries every key's model, detector and n into the next run,
on a new input file and at another parallelism; mode changes are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from river import drift

from tests.integration.conftest import (
    REPO,
    by_key,
    drifting_stream,
    jsonable,
    read_output,
    run_cli,
    write_jsonl,
)
from tests.integration.test_parity import default_model
from tests.reference import reference_predictions

KEYS = tuple(f"u{i}" for i in range(12))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """Night one: 6,000 records at parallelism 2, ending with a savepoint."""
    tmp = tmp_path_factory.mktemp("night1")
    records = drifting_stream(9000, keys=KEYS, seed=41, drift_key="u3")
    day1, day2 = records[:6000], records[6000:]
    source = write_jsonl(tmp / "day1.jsonl", day1, extra_lines=["", "not json"])
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp / "out"),
        "--parallelism",
        "2",
        "--savepoint-on-exit",
        str(tmp / "night savepoints é"),  # Flink takes paths in its URIs literally
    )
    assert result.returncode == 0, result.stderr
    savepoint = result.stdout.strip().splitlines()[-1]
    assert Path(savepoint).parent == tmp / "night savepoints é", savepoint
    assert (Path(savepoint) / "_metadata").exists(), savepoint
    assert [p.name for p in tmp.iterdir() if "%" in p.name] == []
    return {
        "tmp": tmp,
        "day1": day1,
        "day2": day2,
        "savepoint": savepoint,
        "out": read_output(tmp / "out"),
    }


def test_first_run_commits_all_output_before_the_savepoint(first_run):
    out = first_run["out"]
    assert len(out["predictions"]) == len(first_run["day1"])
    assert [r["raw"] for r in out["rejected"]] == ["not json"]


@pytest.mark.parametrize("parallelism", [1, 3])
def test_resume_on_a_new_file_at_another_parallelism(first_run, tmp_path, parallelism):
    source = write_jsonl(tmp_path / "day2.jsonl", first_run["day2"])
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp_path / "out"),
        "--parallelism",
        str(parallelism),
        "--restore",
        first_run["savepoint"],
    )
    assert result.returncode == 0, result.stderr
    second = read_output(tmp_path / "out")
    assert len(second["predictions"]) == len(first_run["day2"])
    assert min(p["n"] for p in second["predictions"]) >= 6000 // len(KEYS) - 1

    predictions, alerts = reference_predictions(
        first_run["day1"] + first_run["day2"],
        default_model,
        make_detector=drift.ADWIN,
        detector_spec="drift.ADWIN()",
    )
    assert by_key(first_run["out"]["predictions"] + second["predictions"]) == by_key(
        jsonable(predictions)
    )
    assert by_key(first_run["out"]["alerts"] + second["alerts"]) == by_key(jsonable(alerts))


def test_restore_in_another_execution_mode_is_refused(first_run, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "flink-conf", conf)
    text = (conf / "config.yaml").read_text()
    (conf / "config.yaml").write_text(
        text.replace("execution-mode: process", "execution-mode: thread")
    )
    source = write_jsonl(tmp_path / "day2.jsonl", first_run["day2"][:10])
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp_path / "out"),
        "--restore",
        first_run["savepoint"],
        env={"FLINK_CONF_DIR": str(conf)},
    )
    assert result.returncode == 2
    assert "'process' execution mode" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("to_savepoint", [False, True])
def test_restore_with_another_model_spec_fails_loudly(first_run, tmp_path, to_savepoint):
    source = write_jsonl(tmp_path / "day2.jsonl", first_run["day2"][:50])
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp_path / "out"),
        "--model",
        "tree.HoeffdingTreeClassifier()",
        "--restore",
        first_run["savepoint"],
        *(["--savepoint-on-exit", str(tmp_path / "sp")] if to_savepoint else []),
    )
    assert result.returncode == 1
    assert "was learned with model spec" in result.stderr  # the cause, whatever the exit


def test_an_empty_day_carries_the_models_over(first_run, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")  # blank lines only: nothing to wait for before the savepoint
    result = run_cli(
        *("--source", str(empty), "--output", str(tmp_path / "out-empty")),
        *("--restore", first_run["savepoint"], "--savepoint-on-exit", str(tmp_path / "sp")),
    )
    assert result.returncode == 0, result.stderr
    savepoint = result.stdout.strip().splitlines()[-1]
    assert (tmp_path / "out-empty").is_dir()  # the summary names it: it exists, empty

    source = write_jsonl(tmp_path / "day2.jsonl", first_run["day2"])
    result = run_cli(
        *("--source", str(source), "--output", str(tmp_path / "out"), "--parallelism", "2"),
        *("--restore", savepoint),
    )
    assert result.returncode == 0, result.stderr
    predictions, _ = reference_predictions(
        first_run["day1"] + first_run["day2"],
        default_model,
        make_detector=drift.ADWIN,
        detector_spec="drift.ADWIN()",
    )
    second = read_output(tmp_path / "out")["predictions"]
    assert by_key(second) == by_key(jsonable(predictions[len(first_run["day1"]) :]))
