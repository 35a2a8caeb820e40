"""Workers forked from a warm process (jobs/accel/worker_fork.py), without Flink."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from riverflink.accel.worker_fork import SOCKET_ENV, Zygote

REPO = Path(__file__).resolve().parents[2]
SPECS = {"model_spec": "preprocessing.StandardScaler() | linear_model.LogisticRegression()"}


@pytest.fixture
def zygote(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("RIVERFLINK_FORK", raising=False)
    monkeypatch.delenv(SOCKET_ENV, raising=False)  # restored after: start() sets it
    started = Zygote.start(SPECS, module="tests.fork_probe")
    assert started is not None
    deadline = time.monotonic() + 60
    while not Path(started.socket_path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield started
    started.process.stdin.close()  # as when `riverflink run` ends
    started.process.wait(timeout=30)


def _launch(zygote, tmp_path, *args, env=None):
    return subprocess.run(
        [zygote.launcher, "-m", "tests.fork_probe", *args],
        cwd=tmp_path,
        env={**os.environ, "PROBE": "passed on", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_worker_is_forked_warm_with_the_launchers_streams_environment_and_place(
    zygote, tmp_path
):
    done = _launch(zygote, tmp_path, "3", "--id=1-1")
    assert done.returncode == 3
    assert json.loads(done.stdout) == {
        "argv": ["3", "--id=1-1"],
        "cwd": str(tmp_path),
        "probe": "passed on",
        "warm": True,  # River and riverflink's operators were imported before the fork
        "frozen": True,  # and kept out of the worker's cycle collector
    }
    assert done.stderr == "to stderr\n"


def test_two_workers_at_once(zygote, tmp_path):
    launches = [
        subprocess.Popen(
            [zygote.launcher, "-m", "tests.fork_probe", str(code)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        for code in (0, 5)
    ]
    assert [p.wait(timeout=60) for p in launches] == [0, 5]
    assert all(json.loads(p.stdout.read())["warm"] for p in launches)


def test_without_the_zygote_the_launcher_runs_the_worker_cold(zygote, tmp_path):
    done = _launch(zygote, tmp_path, "4", env={SOCKET_ENV: str(tmp_path / "gone.sock")})
    assert done.returncode == 4
    assert json.loads(done.stdout)["warm"] is False
    assert json.loads(done.stdout)["frozen"] is False
    assert json.loads(done.stdout)["cwd"] == str(tmp_path)


def test_other_commands_run_the_real_interpreter(zygote, tmp_path):
    done = subprocess.run(
        [zygote.launcher, "-c", "import sys; print(sys.version_info[0])"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == "3\n"


def test_the_zygote_leaves_with_riverflink_run_and_takes_its_directory(zygote):
    zygote.process.stdin.close()
    assert zygote.process.wait(timeout=30) == 0
    assert not zygote.directory.exists()


def test_forking_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("RIVERFLINK_FORK", "0")
    assert Zygote.start(SPECS) is None


def test_the_zygote_builds_the_specs_first_and_tells_the_models_kind(zygote):
    assert zygote.model_kind() == "classifier"


def test_a_bad_spec_is_reported_by_the_zygote_as_the_learner_reports_it(monkeypatch):
    from riverflink.operators.learner import OnlineLearner

    bad = {"model_spec": "linear_model.Nope()"}
    with pytest.raises(ValueError) as local:
        OnlineLearner(**bad)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("RIVERFLINK_FORK", raising=False)
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    started = Zygote.start(bad, module="tests.fork_probe")
    try:
        with pytest.raises(ValueError) as remote:
            started.model_kind()
    finally:
        started.close()
    assert str(remote.value) == str(local.value)


def test_the_zygote_computes_the_run_summary_as_the_client_would(zygote, tmp_path):
    from riverflink.results.summary import job_summary

    out = tmp_path / "out"
    (out / "predictions").mkdir(parents=True)
    rows = [{"key": "a", "id": i, "y_pred": i > 0, "y_true": True, "n": i} for i in range(4)]
    (out / "predictions" / "part-0-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = dict(model_spec=SPECS["model_spec"], metric_spec="metrics.F1()", elapsed=61.0)
    text = zygote.summary(str(out), **options)
    assert text == job_summary(out, **options)
    assert 'metrics.F1() per key: best "a" 0.8571' in text
    assert zygote.summary(str(tmp_path / "nothing"), **options) is None  # nothing committed
    zygote.close()
    with pytest.raises(OSError):  # gone: the client computes the summary itself
        zygote.summary(str(out), **options)


def test_the_zygote_reads_output_committed_during_the_run_for_the_summary(zygote, tmp_path):
    from riverflink.results.summary import job_summary

    out = tmp_path / "out"
    options = dict(model_spec=SPECS["model_spec"], metric_spec=None, elapsed=3.0)
    assert zygote.summary(str(out), **options) is None  # the zygote serves: nothing yet
    zygote.watch(str(out))  # before the job has written anything
    rows = [{"key": "a", "id": i, "y_pred": i % 2 == 0, "y_true": True, "n": i} for i in range(6)]
    (out / "predictions").mkdir(parents=True)
    first = out / "predictions" / "part-0-0.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    time.sleep(2.0)  # the zygote reads it meanwhile
    # Its bytes change behind the zygote's back (same size, time and inode): a summary
    # that reads it only at the end would see key "z".
    stat = first.stat()
    changed = first.read_bytes().replace(b'"a"', b'"z"')
    with open(first, "r+b") as fh:
        fh.write(changed)
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = out / "predictions" / "part-1-0.jsonl"
    second.write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    text = zygote.summary(str(out), **options)
    assert "6 predictions" in text and '"z"' not in text
    assert 'best "a" 0.5000, worst "a" 0.5000 (over 1 key with labels)' in text
    first.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    assert text == job_summary(out, **options)


def test_ctrl_c_and_a_client_gone_early_leave_no_traceback(tmp_path):
    """Ctrl-C reaches the whole process group, and a failed run may close the verdict's
    pipe first: the zygote printed a KeyboardInterrupt or BrokenPipeError traceback."""
    import signal

    read_end, write_end = os.pipe()
    os.close(read_end)  # the client is gone before the verdict
    socket_path = tmp_path / "zygote.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "riverflink.accel.worker_fork", str(socket_path), json.dumps(SPECS)]
        + [str(write_end)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(write_end,),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    os.close(write_end)
    deadline = time.monotonic() + 60
    while not socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None  # still serving: the client decides when it ends
    process.stdin.close()
    assert process.wait(timeout=60) == 0
    assert "Traceback" not in process.stderr.read().decode()


def test_a_zygote_whose_run_has_ended_leaves_quietly(tmp_path, capsys):
    """A run refused after starting its zygote removes the zygote's directory; the zygote
    then has nowhere to listen, and ends without a traceback on the run's stderr."""
    import signal

    from riverflink.accel.worker_fork import main

    handler = signal.getsignal(signal.SIGINT)  # the zygote ignores Ctrl-C (its client's)
    try:
        assert main([str(tmp_path / "gone" / "zygote.sock"), "{}"]) == 0
    finally:
        signal.signal(signal.SIGINT, handler)
    assert capsys.readouterr().err == ""
