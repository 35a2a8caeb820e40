"""Job settings (constructor validation, flags + YAML job file) and latest_checkpoint."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from riverflink.cli.flags import add_run_arguments
from riverflink.config.checkpoints import latest_checkpoint
from riverflink.config.job_file import settings_from_args
from riverflink.config.settings import JobSettings, SettingsError


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text('{"key": "a", "x": 1, "y": true}\n')
    return path


@pytest.fixture
def out(tmp_path) -> str:
    return str(tmp_path / "out")


def settings(**values) -> JobSettings:
    return JobSettings(**values)


def parse(argv) -> JobSettings:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return settings_from_args(parser.parse_args(argv))


# --- JobSettings ------------------------------------------------------------------------------


def test_defaults_for_a_file_source(data, out):
    s = settings(source=str(data), output=out)
    assert (s.key, s.id, s.target, s.features) == ("key", "id", "y", None)
    assert (s.on_drift, s.parallelism, s.follow) == ("alert", 1, False)
    assert not s.unbounded and not s.is_socket


@pytest.mark.parametrize("source", ["", None])
def test_source_is_required(source, out):
    with pytest.raises(SettingsError, match="--source is required"):
        settings(source=source, output=out)


def test_source_must_exist(tmp_path, out):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SettingsError, match="no such file or directory"):
        settings(source=str(missing), output=out)


@pytest.mark.parametrize("output", ["", None])
def test_output_is_required(data, output):
    with pytest.raises(SettingsError, match="--output"):
        settings(source=str(data), output=output)


def test_output_may_not_be_a_file(data):
    with pytest.raises(SettingsError, match="not a directory"):
        settings(source=str(data), output=str(data))


def test_output_may_be_stdout(data):
    assert settings(source=str(data), output="-").output == "-"


@pytest.mark.parametrize(
    "source, address",
    [
        ("socket://localhost:9999", ("localhost", 9999)),
        ("socket://10.0.0.1:1", ("10.0.0.1", 1)),
        ("socket://[::1]:65535", ("[::1]", 65535)),
    ],
)
def test_socket_sources_are_parsed(source, address, out):
    s = settings(source=source, output=out)
    assert s.is_socket and s.unbounded
    assert s.socket_address == address


@pytest.mark.parametrize(
    "source",
    [
        "socket://localhost",
        "socket://localhost:",
        "socket://:9999",
        "socket://localhost:http",
        "socket://localhost:0",
        "socket://localhost:65536",
        "socket://localhost:-1",
        "socket://localhost:99999999",
        "socket://",
    ],
)
def test_bad_socket_addresses_are_refused(source, out):
    with pytest.raises(SettingsError, match="socket://HOST:PORT"):
        settings(source=source, output=out)


def test_follow_needs_a_directory(tmp_path, data, out):
    (tmp_path / "incoming").mkdir()
    assert settings(source=str(tmp_path / "incoming"), output=out, follow=True).unbounded
    with pytest.raises(SettingsError, match="--follow"):
        settings(source=str(data), output=out, follow=True)


def test_follow_cannot_watch_a_socket(out):
    with pytest.raises(SettingsError, match="--follow"):
        settings(source="socket://localhost:9999", output=out, follow=True)


@pytest.mark.parametrize("parallelism", [0, -1, 1.5, "2"])
def test_parallelism_must_be_a_positive_whole_number(parallelism, data, out):
    with pytest.raises(SettingsError, match="--parallelism"):
        settings(source=str(data), output=out, parallelism=parallelism)


@pytest.mark.parametrize(
    "name, flag",
    [
        ("discovery_interval", "--discovery-interval"),
        ("checkpoint_interval", "--checkpoint-interval"),
        ("state_ttl", "--state-ttl"),
    ],
)
@pytest.mark.parametrize("value", [-1.0, 0, 0.0, float("nan"), "5", True])
def test_intervals_must_be_positive_numbers(name, flag, value, data, out):
    with pytest.raises(SettingsError, match=re.escape(flag)):
        settings(source=str(data), output=out, **{name: value})


def test_parallelism_beyond_the_routing_buckets_is_refused(data, out):
    from riverflink.state.descriptors import ROUTING_BUCKETS

    assert settings(source=str(data), output=out, parallelism=ROUTING_BUCKETS).parallelism == 128
    with pytest.raises(SettingsError, match="at most 128 subtasks"):
        settings(source=str(data), output=out, parallelism=ROUTING_BUCKETS + 1)


@pytest.mark.parametrize("inside", [".", "out", "out/deeper"])
def test_output_inside_a_source_directory_is_refused(tmp_path, inside):
    """A --follow run read its own committed output as new input, over and over."""
    source = tmp_path / "incoming"
    source.mkdir()
    with pytest.raises(SettingsError, match="inside --source"):
        settings(source=str(source), output=str(source / inside), follow=True)
    with pytest.raises(SettingsError, match="inside --source"):
        settings(source=str(source), output=str(source / inside))


def test_output_beside_the_source_is_fine(tmp_path, data):
    source = tmp_path / "incoming"
    source.mkdir()
    assert settings(source=str(source), output=str(tmp_path / "incoming-out"), follow=True)
    assert settings(source=str(data), output=str(tmp_path))  # a file's own directory


def test_checkpoint_interval_without_checkpoints_is_refused(tmp_path, data, out):
    with pytest.raises(SettingsError, match="--checkpoint-interval needs --checkpoint-dir"):
        settings(source=str(data), output=out, checkpoint_interval=5.0)
    assert settings(source=str(data), output=out, checkpoint_interval=5.0, checkpoint_dir="c")
    assert settings(source=str(tmp_path), output="-", follow=True, checkpoint_interval=5.0)
    assert settings(source=str(tmp_path), output=str(tmp_path / "_out"), follow=True)
    assert settings(source="socket://localhost:9", output=out, checkpoint_interval=5.0)
    assert settings(source=str(data), output=out, checkpoint_interval=5.0, savepoint_on_exit="sp")


def test_discovery_interval_needs_follow(tmp_path, data, out):
    with pytest.raises(SettingsError, match="without --follow the source is read once"):
        settings(source=str(data), output=out, discovery_interval=1.0)
    (tmp_path / "incoming").mkdir()
    followed = settings(
        source=str(tmp_path / "incoming"), output=out, follow=True, discovery_interval=1.0
    )
    assert followed.discovery_interval == 1.0


def test_socket_retries_must_not_be_negative(out):
    with pytest.raises(SettingsError, match="--socket-retries"):
        settings(source="socket://localhost:9999", output=out, socket_retries=-1)


@pytest.mark.parametrize("on_drift", ["ignore", "", "Reset", None])
def test_on_drift_must_be_alert_or_reset(on_drift, data, out):
    with pytest.raises(SettingsError, match="--on-drift"):
        settings(source=str(data), output=out, on_drift=on_drift)


@pytest.mark.parametrize(
    "roles", [{"key": "id"}, {"target": "key"}, {"id": "y"}, {"key": "f", "id": "f", "target": "f"}]
)
def test_role_fields_must_differ(roles, data, out):
    with pytest.raises(SettingsError, match="different fields"):
        settings(source=str(data), output=out, **roles)


@pytest.mark.parametrize("role", ["key", "id", "target"])
def test_role_fields_must_not_be_empty(role, data, out):
    with pytest.raises(SettingsError, match=f"--{role}"):
        settings(source=str(data), output=out, **{role: ""})


@pytest.mark.parametrize(
    "features, roles",
    [(("key", "a"), {}), (("a", "y"), {}), (("a", "id"), {}), (("user",), {"key": "user"})],
)
def test_features_cannot_include_role_fields(features, roles, data, out):
    with pytest.raises(SettingsError, match="--features"):
        settings(source=str(data), output=out, features=features, **roles)


@pytest.mark.parametrize("features", [(), ("a", "")])
def test_features_cannot_be_empty(features, data, out):
    with pytest.raises(SettingsError, match="--features"):
        settings(source=str(data), output=out, features=features)


def test_restore_latest_needs_a_checkpoint_dir(tmp_path, data, out):
    with pytest.raises(SettingsError, match="--checkpoint-dir"):
        settings(source=str(data), output=out, restore="latest")
    s = settings(source=str(data), output=out, restore="latest", checkpoint_dir=str(tmp_path))
    assert s.restore == "latest"


def test_restore_path_must_exist(tmp_path, data, out):
    with pytest.raises(SettingsError, match="--restore"):
        settings(source=str(data), output=out, restore=str(tmp_path / "savepoint-123"))


def test_a_fresh_run_does_not_append_to_an_earlier_runs_output(tmp_path, data, out):
    """Two runs into one directory were summarized and reported as one."""
    (Path(out) / "predictions").mkdir(parents=True)
    (Path(out) / "predictions" / ".part-a-0.jsonl.inprogress.x").write_text("{}\n")
    assert settings(source=str(data), output=out)  # nothing committed yet
    (Path(out) / "rejected").mkdir()
    (Path(out) / "rejected" / "part-a-0.jsonl").write_text("{}\n")
    with pytest.raises(SettingsError, match="already holds an earlier run's output"):
        settings(source=str(data), output=out)
    chk = checkpoint(Path(out) / "_checkpoints", "job", 7)
    with pytest.raises(SettingsError, match="--restore latest --checkpoint-dir"):
        settings(source=str(data), output=out)
    assert settings(source=str(data), output=out, restore=str(chk))  # resuming appends


def test_restore_path_must_be_a_checkpoint_or_savepoint(tmp_path, data, out):
    """These failed inside Flink ("Cannot find meta data file", "Unexpected magic number")."""
    chk = checkpoint(tmp_path / "ckpt", "job", 3)
    for good in (chk, chk / "_metadata"):
        assert settings(source=str(data), output=out, restore=str(good)).restore == str(good)
    with pytest.raises(SettingsError, match="--restore latest --checkpoint-dir"):
        settings(source=str(data), output=out, restore=str(tmp_path / "ckpt"))
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", data):
        with pytest.raises(SettingsError, match="is not a checkpoint or savepoint"):
            settings(source=str(data), output=out, restore=str(bad))


# --- flags and the YAML job file --------------------------------------------------------------


def test_flags_alone(data, out):
    s = parse(
        [
            "--source",
            str(data),
            "--output",
            out,
            "--features",
            "a, b",
            "--on-drift",
            "reset",
            "--parallelism",
            "3",
            "--checkpoint-dir",
            "ckpt",
            "--checkpoint-interval",
            "5",
        ]
    )
    assert s.features == ("a", "b")
    assert (s.on_drift, s.parallelism, s.checkpoint_interval) == ("reset", 3, 5.0)


@pytest.mark.parametrize("argv", [[], ["--output", "out"]])
def test_flags_must_name_a_source(argv):
    with pytest.raises(SettingsError, match="--source is required"):
        parse(argv)


def test_flags_must_name_an_output(data):
    with pytest.raises(SettingsError, match="--output is required"):
        parse(["--source", str(data)])


def write_job(tmp_path, text: str) -> Path:
    job = tmp_path / "jobs" / "job.yaml"
    job.parent.mkdir(exist_ok=True)
    job.write_text(text)
    return job


def test_job_file_keys_may_use_dashes_or_underscores(tmp_path, data, out):
    job = write_job(
        tmp_path,
        f"""
source: {data}
output: {out}
on-drift: reset
checkpoint-dir: ckpt
checkpoint_interval: 5
state-ttl: 60
features: a,b
model: "preprocessing.StandardScaler() | linear_model.LinearRegression()"
drift: drift.PageHinkley()
""",
    )
    s = parse(["--config", str(job)])
    assert s.on_drift == "reset"
    assert s.checkpoint_interval == 5.0 and isinstance(s.checkpoint_interval, float)
    assert s.state_ttl == 60.0
    assert s.features == ("a", "b")
    assert s.model == "preprocessing.StandardScaler() | linear_model.LinearRegression()"
    assert s.drift == "drift.PageHinkley()"


def test_job_file_features_as_a_list(tmp_path, data, out):
    job = write_job(tmp_path, f"source: {data}\noutput: {out}\nfeatures: [a, b, c]\n")
    assert parse(["--config", str(job)]).features == ("a", "b", "c")


def test_flags_override_the_job_file(tmp_path, data, out):
    other = tmp_path / "other.jsonl"
    other.write_text("")
    job = write_job(
        tmp_path,
        f"""
source: {data}
output: {out}
model: tree.HoeffdingTreeClassifier()
on_drift: reset
parallelism: 4
features: [a, b]
""",
    )
    s = parse(
        [
            "--config",
            str(job),
            "--source",
            str(other),
            "--model",
            "linear_model.LogisticRegression()",
            "--parallelism",
            "2",
            "--features",
            "c",
        ]
    )
    assert s.source == str(other)
    assert s.model == "linear_model.LogisticRegression()"
    assert s.parallelism == 2
    assert s.features == ("c",)
    assert s.on_drift == "reset"  # not given as a flag: the file's value stands


def test_unknown_job_file_key_is_refused_listing_the_known_ones(tmp_path, data, out):
    job = write_job(tmp_path, f"source: {data}\noutput: {out}\nmodle: tree.ARFClassifier()\n")
    with pytest.raises(SettingsError) as info:
        parse(["--config", str(job)])
    message = str(info.value)
    assert "'modle'" in message
    for known in ("model", "source", "on-drift", "checkpoint-dir", "features"):
        assert re.search(rf"\b{re.escape(known)}\b", message.split("known", 1)[1]), known


def test_relative_paths_in_the_job_file_are_relative_to_the_file(tmp_path, monkeypatch):
    job = write_job(
        tmp_path,
        """
source: data/in.jsonl
output: out
checkpoint-dir: ckpt
restore: latest
schema: data/schema.yaml
feature-drift: drift.PageHinkley()
""",
    )
    (job.parent / "data").mkdir()
    (job.parent / "data" / "in.jsonl").write_text("")
    (job.parent / "data" / "schema.yaml").write_text("type: object\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    s = parse(["--config", os.path.relpath(job, elsewhere)])
    base = job.parent.resolve()
    assert Path(s.source).resolve() == base / "data" / "in.jsonl"
    assert Path(s.output).resolve() == base / "out"
    assert Path(s.checkpoint_dir).resolve() == base / "ckpt"
    assert Path(s.schema).resolve() == base / "data" / "schema.yaml"
    assert s.feature_drift == "drift.PageHinkley()"
    assert s.restore == "latest"


def test_special_values_in_the_job_file_are_not_paths(tmp_path):
    job = write_job(tmp_path, "source: socket://localhost:9999\noutput: '-'\n")
    s = parse(["--config", str(job)])
    assert s.source == "socket://localhost:9999"
    assert s.output == "-"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "a: [unclosed\n"])
def test_a_job_file_that_is_not_a_mapping_is_refused(tmp_path, text):
    job = write_job(tmp_path, text)
    with pytest.raises(SettingsError, match="--config"):
        parse(["--config", str(job)])


def test_a_missing_job_file_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="--config"):
        parse(["--config", str(tmp_path / "missing.yaml")])


def test_job_file_values_are_validated_too(tmp_path, data, out):
    job = write_job(tmp_path, f"source: {data}\noutput: {out}\nparallelism: 0\n")
    with pytest.raises(SettingsError, match="--parallelism"):
        parse(["--config", str(job)])


@pytest.mark.parametrize(
    "line, named",
    [
        ("key: 5", "key must be text"),
        ("model: 12", "model must be text"),
        ("output-extra: 1", "unknown setting"),
        ("follow: 'no'", "follow must be true or false"),
        ("parallelism: 2.5", "parallelism must be a whole number"),
        ("label-ttl: soon", "label-ttl must be a number of seconds"),
        ("features: {a: 1}", "features must be a list of field names"),
        ("features: [a, 1]", "features must be a list of field names"),
        ("profile: [x]", "profile must be text"),
        ("no: 1", "YAML reads yes, no, on and off"),
    ],
)
def test_job_file_values_of_the_wrong_type_are_named(tmp_path, data, out, line, named):
    """They failed inside the job, or as a bare Python TypeError naming no setting."""
    job = write_job(tmp_path, f"source: {data}\noutput: {out}\n{line}\n")
    with pytest.raises(SettingsError, match=re.escape(named)):
        parse(["--config", str(job)])


def test_a_source_given_as_a_number_is_refused_before_the_job(tmp_path, out):
    job = write_job(tmp_path, f"source: 123\noutput: {out}\n")
    with pytest.raises(SettingsError, match="source must be text"):
        parse(["--config", str(job)])


def test_yaml_errors_are_one_line_with_the_place(tmp_path, data, out):
    job = write_job(tmp_path, f"source: {data}\noutput: {out}\nmodel: [unclosed\n")
    with pytest.raises(SettingsError) as info:
        parse(["--config", str(job)])
    assert "\n" not in str(info.value)
    assert re.search(r"not valid YAML at line \d+, column \d+", str(info.value))


# --- latest_checkpoint ------------------------------------------------------------------------


def checkpoint(root: Path, job: str, n: int, *, complete: bool = True, mtime: float = 0) -> Path:
    path = root / job / f"chk-{n}"
    path.mkdir(parents=True)
    (path / "shared-state").write_bytes(b"x")
    if complete:
        (path / "_metadata").write_bytes(b"meta")
        if mtime:
            os.utime(path / "_metadata", (mtime, mtime))
    return path


def test_no_checkpoint_means_none(tmp_path):
    assert latest_checkpoint(str(tmp_path)) is None
    assert latest_checkpoint(str(tmp_path / "missing")) is None
    checkpoint(tmp_path, "job1", 1, complete=False)
    assert latest_checkpoint(str(tmp_path)) is None


def test_the_newest_completed_checkpoint_wins(tmp_path):
    checkpoint(tmp_path, "job1", 1, mtime=1_000)
    checkpoint(tmp_path, "job1", 2, mtime=2_000)
    newest = checkpoint(tmp_path, "job1", 3, mtime=3_000)
    assert latest_checkpoint(str(tmp_path)) == newest


def test_an_incomplete_checkpoint_is_ignored(tmp_path):
    done = checkpoint(tmp_path, "job1", 4, mtime=1_000)
    checkpoint(tmp_path, "job1", 5, complete=False)  # still being written, or abandoned
    assert latest_checkpoint(str(tmp_path)) == done


def test_checkpoint_numbers_compare_as_numbers(tmp_path):
    checkpoint(tmp_path, "job1", 9, mtime=5_000)
    ten = checkpoint(tmp_path, "job1", 10, mtime=5_000)
    assert latest_checkpoint(str(tmp_path)) == ten


def test_the_newest_job_wins_over_a_higher_number_in_an_older_job(tmp_path):
    checkpoint(tmp_path, "old-job", 50, mtime=1_000)
    newer = checkpoint(tmp_path, "new-job", 2, mtime=9_000)
    assert latest_checkpoint(str(tmp_path)) == newer


def test_a_checkpoint_directory_of_one_job_also_works(tmp_path):
    job = tmp_path / "job1"
    checkpoint(tmp_path, "job1", 1, mtime=1_000)
    second = checkpoint(tmp_path, "job1", 2, mtime=2_000)
    assert latest_checkpoint(str(job)) == second


def test_profile_follows_the_source_unless_given(data, tmp_path, out):
    from riverflink.config.settings import PROFILES

    assert settings(source=str(data), output=out).tuning == PROFILES["throughput"]
    assert settings(source="socket://localhost:9999", output=out).tuning == PROFILES["latency"]
    (tmp_path / "incoming").mkdir()
    followed = settings(source=str(tmp_path / "incoming"), output=out, follow=True)
    assert followed.tuning == PROFILES["latency"]
    chosen = parse(["--source", str(data), "--output", out, "--profile", "latency"])
    assert chosen.tuning == PROFILES["latency"]
    assert PROFILES["latency"]["batch_ms"] == 0  # each line crosses alone


def test_unknown_profile_is_refused(data, out):
    with pytest.raises(SettingsError, match="--profile must be 'latency' or 'throughput'"):
        settings(source=str(data), output=out, profile="fast")


def test_an_empty_job_file_value_means_its_default_or_says_what_to_write(tmp_path, data, out):
    job = write_job(tmp_path, f"source: {data}\noutput: {out}\nmetric:\ncheckpoint-dir: null\n")
    s = parse(["--config", str(job)])
    assert s.metric is None and s.checkpoint_dir is None
    for line, hint in (("model:", "give it a value, or leave"), ("drift: null", "none turns")):
        job = write_job(tmp_path, f"source: {data}\noutput: {out}\n{line}\n")
        with pytest.raises(SettingsError, match=f"job.yaml: {line.split(':')[0]} is empty.*{hint}"):
            parse(["--config", str(job)])


def test_socket_retries_need_a_socket(data, out):
    with pytest.raises(SettingsError, match="--socket-retries .* is not a socket"):
        parse(["--source", str(data), "--output", str(out), "--socket-retries", "3"])
    s = parse(["--source", "socket://localhost:9", "--output", "-", "--socket-retries", "3"])
    assert s.socket_retries == 3


def test_submit_offers_no_savepoint_on_exit(capsys):
    from riverflink.cli import main

    with pytest.raises(SystemExit):
        main(["submit", "--help"])
    assert "--savepoint-on-exit DIR" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--savepoint-on-exit DIR" in capsys.readouterr().out


def test_an_installed_riverflink_reads_the_flink_conf_installed_with_it(tmp_path, monkeypatch):
    """A checkout reads its flink-conf/; a wheel carries it inside the package
    (riverflink/flink_conf/, pyproject's package-dir), and a FLINK_CONF_DIR wins."""
    from riverflink.config import flink_conf as flink_config
    from riverflink.config import paths

    monkeypatch.delenv("FLINK_CONF_DIR", raising=False)
    repo = Path(__file__).resolve().parents[2]
    assert flink_config.conf_dir() == repo / "flink-conf"  # a checkout: its own
    installed = tmp_path / "site-packages" / "riverflink"
    monkeypatch.setattr(paths, "__file__", str(installed / "config" / "paths.py"))
    assert flink_config.conf_dir() == installed / "flink_conf"
    monkeypatch.setenv("FLINK_CONF_DIR", str(tmp_path / "mine"))
    assert flink_config.conf_dir() == tmp_path / "mine"


@pytest.mark.parametrize(
    "text, size",
    [("2gb", 2 * 2**30), ("512 mb", 512 * 2**20), ("0", 0), (1048576, 2**20), ("64K", 2**16)],
)
def test_memory_sizes_read_as_flink_writes_them(text, size):
    from riverflink.config.flink_conf import memory_size

    assert memory_size(text, "riverflink.pickled-memory") == size


@pytest.mark.parametrize("text", ["lots", "-1gb", "2 zb", "1.5gb", ""])
def test_a_bad_memory_size_names_the_setting(text):
    from riverflink.config.flink_conf import memory_size

    with pytest.raises(ValueError, match="riverflink.pickled-memory in config.yaml"):
        memory_size(text, "riverflink.pickled-memory")
