"""--savepoint-on-exit carries every key's model, detector and n into the next run,
on a new input file and at another parallelism; mode changes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import (
    assert_like_river,
    by_key,
    drifting_stream,
    flink_conf,
    river_rows,
    run_cli,
    run_job,
    write_jsonl,
)

KEYS = tuple(f"u{i}" for i in range(12))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """Night one: 6,000 records at parallelism 2, ending with a savepoint."""
    tmp = tmp_path_factory.mktemp("night1")
    records = drifting_stream(9000, keys=KEYS, seed=41, drift_key="u3")
    day1, day2 = records[:6000], records[6000:]
    source = write_jsonl(tmp / "day1.jsonl", day1, extra_lines=["", "not json"])
    night = run_job(
        source,
        tmp / "out",
        "--parallelism",
        "2",
        "--savepoint-on-exit",
        str(tmp / "night savepoints é"),  # Flink takes paths in its URIs literally
    )
    savepoint = night.last_line
    assert Path(savepoint).parent == tmp / "night savepoints é", savepoint
    assert (Path(savepoint) / "_metadata").exists(), savepoint
    assert [p.name for p in tmp.iterdir() if "%" in p.name] == []
    return {
        "tmp": tmp,
        "day1": day1,
        "day2": day2,
        "savepoint": savepoint,
        "out": night.out,
    }


def test_first_run_commits_all_output_before_the_savepoint(first_run):
    out = first_run["out"]
    assert len(out["predictions"]) == len(first_run["day1"])
    assert [r["raw"] for r in out["rejected"]] == ["not json"]


@pytest.mark.parametrize("parallelism", [1, 3])
def test_resume_on_a_new_file_at_another_parallelism(first_run, tmp_path, parallelism):
    second = run_job(
        write_jsonl(tmp_path / "day2.jsonl", first_run["day2"]),
        tmp_path / "out",
        *("--parallelism", str(parallelism), "--restore", first_run["savepoint"]),
    ).out
    assert len(second["predictions"]) == len(first_run["day2"])
    assert min(p["n"] for p in second["predictions"]) >= 6000 // len(KEYS) - 1

    both = {kind: first_run["out"][kind] + second[kind] for kind in ("predictions", "alerts")}
    assert_like_river(both, first_run["day1"] + first_run["day2"])


def test_restore_in_another_execution_mode_is_refused(first_run, tmp_path):
    thread_mode = flink_conf(
        tmp_path / "conf", {"execution-mode: process": "execution-mode: thread"}
    )
    source = write_jsonl(tmp_path / "day2.jsonl", first_run["day2"][:10])
    result = run_cli(
        *("--source", str(source), "--output", str(tmp_path / "out")),
        *("--restore", first_run["savepoint"]),
        env=thread_mode,
    )
    assert result.returncode == 2
    assert "'process' execution mode" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("to_savepoint", [False, True])
def test_restore_with_another_model_spec_fails_loudly(first_run, tmp_path, to_savepoint):
    source = write_jsonl(tmp_path / "day2.jsonl", first_run["day2"][:50])
    result = run_cli(
        *("--source", str(source), "--output", str(tmp_path / "out")),
        *("--model", "tree.HoeffdingTreeClassifier()", "--restore", first_run["savepoint"]),
        *(["--savepoint-on-exit", str(tmp_path / "sp")] if to_savepoint else []),
    )
    assert result.returncode == 1
    assert "was learned with model spec" in result.stderr  # the cause, whatever the exit


def test_an_empty_day_carries_the_models_over(first_run, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")  # blank lines only: nothing to wait for before the savepoint
    savepoint = run_job(
        empty,
        tmp_path / "out-empty",
        *("--restore", first_run["savepoint"], "--savepoint-on-exit", str(tmp_path / "sp")),
    ).last_line
    assert (tmp_path / "out-empty").is_dir()  # the summary names it: it exists, empty

    second = run_job(
        write_jsonl(tmp_path / "day2.jsonl", first_run["day2"]),
        tmp_path / "out",
        *("--parallelism", "2", "--restore", savepoint),
    ).out["predictions"]
    predictions = river_rows(first_run["day1"] + first_run["day2"])["predictions"]
    assert by_key(second) == by_key(predictions[len(first_run["day1"]) :])
