"""Reading checkpoints on disk without Flink: the execution-mode guard and exit counting."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib

import pytest

from jobs.checkpoints import execution_mode_of, holds_sql_windows
from jobs.exit_savepoint import (
    CommitCounter,
    UnreadableInput,
    count_records,
    input_files,
    local_path,
)
from jobs.progress import count_lines

NAME = "riverflink-key-state-v1"


def write_checkpoint(tmp_path, *chunks: bytes):
    chk = tmp_path / "job" / "chk-3"
    chk.mkdir(parents=True)
    (chk / "_metadata").write_bytes(chunks[0])
    for i, chunk in enumerate(chunks[1:]):
        (chk / f"state-{i}").write_bytes(chunk)
    return chk


def test_process_mode_state_is_recognised_in_metadata(tmp_path):
    chk = write_checkpoint(tmp_path, b"\x00\x01$python-state-" + NAME.encode() + b"\x00")
    assert execution_mode_of(str(chk), NAME) == "process"
    assert execution_mode_of(str(chk / "_metadata"), NAME) == "process"


def test_thread_mode_state_is_recognised_in_a_state_file(tmp_path):
    chk = write_checkpoint(tmp_path, b"no names here", b"\x00\x17" + NAME.encode() + b"\x00")
    assert execution_mode_of(str(chk), NAME) == "thread"


def test_checkpoint_without_model_state(tmp_path):
    chk = write_checkpoint(tmp_path, b"riverflink-source riverflink-parse")
    assert execution_mode_of(str(chk), NAME) is None


def test_sql_window_state_is_recognised(tmp_path):
    chk = write_checkpoint(tmp_path, b"meta", b"\x00\x0bwindow-aggs\x00 ArrayAggAccumulator")
    assert holds_sql_windows(str(chk)) and holds_sql_windows(str(chk / "_metadata"))
    plain = write_checkpoint(tmp_path / "other", b"riverflink-source riverflink-route")
    assert not holds_sql_windows(str(plain))
    assert not holds_sql_windows(str(tmp_path / "missing"))


def test_input_files_skip_hidden_and_underscore_files(tmp_path):
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / ".b.jsonl").write_text("{}\n")
    (tmp_path / "_c").mkdir()
    (tmp_path / "_c" / "d.jsonl").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.jsonl").write_text("{}\n")
    assert [p.name for p in input_files(str(tmp_path))] == ["a.jsonl", "e.jsonl"]


def test_count_records_splits_lines_like_java_and_skips_blank_ones(tmp_path):
    data = b'{"a": 1}\r\n\n   \r{"b": 2}\rnot json\n\xff\n{"c": 3}'
    (tmp_path / "in.jsonl").write_bytes(data)
    assert count_records([tmp_path / "in.jsonl"]) == 5


@pytest.mark.parametrize(
    "suffix, pack",
    [
        (".gz", gzip.compress),
        (".gzip", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".deflate", zlib.compress),
    ],
)
def test_compressed_inputs_count_as_flink_reads_them(tmp_path, suffix, pack):
    """Flink decompresses these by extension; counting their compressed bytes made
    --savepoint-on-exit wait for lines that never come (or stop before the input ended)."""
    lines = b"".join(b'{"key": "k%d", "x": %d}\n' % (i, i) for i in range(1500))
    path = tmp_path / f"in.jsonl{suffix}"
    path.write_bytes(pack(lines + b"\n  \n"))
    assert count_records([path]) == 1500
    assert count_lines([path]) == 1500


def test_inputs_python_cannot_read_are_refused_with_what_to_do(tmp_path):
    zst = tmp_path / "in.jsonl.zst"
    zst.write_bytes(b"\x28\xb5\x2f\xfd not really zstd")
    with pytest.raises(UnreadableInput, match="decompress it first"):
        count_records([zst])
    broken = tmp_path / "in.jsonl.gz"
    broken.write_bytes(b"plain text, not gzip\n")
    with pytest.raises(UnreadableInput, match="not a valid .gz file"):
        count_records([broken])


def test_commit_counter_ignores_files_that_were_there_before(tmp_path):
    out = tmp_path / "predictions"
    out.mkdir()
    (out / "part-old-0.jsonl").write_text("{}\n{}\n")
    counter = CommitCounter([out])
    (out / ".part-new-0.jsonl.inprogress").write_text("{}\n")
    assert counter.count() == 0
    (out / "part-new-0.jsonl").write_text("{}\n{}\n{}\n")
    assert counter.count() == 3


def test_local_path_from_flink_uri():
    assert local_path("file:/tmp/sp/savepoint-1") == "/tmp/sp/savepoint-1"
    assert local_path("file:///tmp/a%20b") == "/tmp/a b"
    assert local_path("/plain") == "/plain"


def test_restore_of_state_in_the_earlier_layout_is_refused(tmp_path):
    import pytest

    from jobs.online_learning import _check_execution_mode
    from jobs.settings import SettingsError
    from state.descriptors import KEY_STATE_NAME

    old = write_checkpoint(tmp_path / "old", b"\x00$python-state-" + NAME.encode() + b"\x00")
    with pytest.raises(SettingsError, match="earlier riverflink"):
        _check_execution_mode(str(old), "process")
    new = write_checkpoint(
        tmp_path / "new", b"\x00$python-state-" + KEY_STATE_NAME.encode() + b"\x00"
    )
    _check_execution_mode(str(new), "process")  # accepted
