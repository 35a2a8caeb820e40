"""Reading checkpoints on disk without Flink: the execution-mode guard and exit counting."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib

import pytest

from riverflink.config.checkpoints import (
    execution_mode_of,
    holds_operator,
    holds_sql_windows,
    operator_id,
)
from riverflink.config.inputs import (
    UnreadableInput,
    count_records,
    flink_uri,
    input_files,
    local_path,
)
from riverflink.results.progress import count_lines
from riverflink.runtime.exit_savepoint import CommitCounter

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


def test_counting_without_splitting_agrees_with_counting_line_by_line():
    """The count of a file without blank lines is taken in C; wherever a line may be
    blank it is taken line by line. Both must agree on any bytes: line breaks of every
    kind, whitespace of one and several bytes, byte-order marks, invalid UTF-8."""
    import random

    from riverflink.config.inputs import _count_line_by_line, _count_without_blank_lines

    pieces = [b'{"k": 1}', b"x", b" ", b"\t", b"\x0b", b"\x1f", b"\r", b"\n", b"\r\n"]
    pieces += [b"\xc2\xa0", b"\xe2\x80\x83", b"\xef\xbb\xbf", b"\xff", b"\xc2", b"{}"]
    rng = random.Random(7)
    fast = 0
    for _ in range(20000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 9)))
        quick = _count_without_blank_lines(data)
        if quick is not None:
            fast += 1
            assert quick == _count_line_by_line(data), data
    assert fast > 2000  # the fast path was taken, not only the fallback
    lines = b"".join(b'{"key": "k%d"}\r\n' % i for i in range(1000))
    assert _count_without_blank_lines(lines) == 1000
    assert _count_without_blank_lines(lines + b"   ") is None
    assert _count_without_blank_lines(b"   \n" + lines) is None
    assert _count_without_blank_lines(b"") == 0


@pytest.mark.parametrize(
    "suffix, pack",
    [
        (".gz", gzip.compress),
        (".gzip", gzip.compress),
        (".bz2", bz2.compress),
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


@pytest.mark.parametrize("suffix, pack", [(".xz", lzma.compress), (".zst", bytes)])
def test_inputs_flink_cannot_read_here_are_refused_with_what_to_do(tmp_path, suffix, pack):
    from riverflink.config.settings import JobSettings, SettingsError

    source = tmp_path / "in"
    (source / "day1").mkdir(parents=True)
    (source / "day1" / "a.jsonl").write_text('{"key": "k"}\n')
    packed = source / "day1" / f"b.jsonl{suffix}"
    packed.write_bytes(pack(b'{"key": "k"}\n'))
    with pytest.raises(UnreadableInput, match="decompress it first"):
        count_records([packed])
    for follow in (False, True):
        with pytest.raises(SettingsError, match=f"{packed}: .*decompress it first"):
            JobSettings(source=str(source), output=str(tmp_path / "out"), follow=follow)
    packed.rename(source / "day1" / f"_b.jsonl{suffix}")  # skipped by the source: accepted
    JobSettings(source=str(source), output=str(tmp_path / "out"))


def test_broken_compressed_inputs_are_refused(tmp_path):
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
    assert local_path("file:///tmp/my data é/savepoint-1") == "/tmp/my data é/savepoint-1"
    # Flink takes URIs literally: %20 is three characters of a name, # and ? are too.
    assert local_path("file:///tmp/a%20b#c?d") == "/tmp/a%20b#c?d"
    assert local_path("/plain") == "/plain"


def test_flink_uris_keep_names_as_they_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = flink_uri("my savepoints é")
    assert uri == f"file://{tmp_path}/my savepoints é"
    assert local_path(uri) == str(tmp_path / "my savepoints é")


def test_operator_ids_are_flinks():
    # Flink's ids of these uids, from Guava's murmur3_128 as Flink's StreamGraphHasherV2 uses
    # it: every length of tail, a whole block, and UTF-8.
    assert operator_id("riverflink-source").hex() == "4fbde0a818949646c66e66bb389a2402"
    assert operator_id("").hex() == "0" * 32
    assert operator_id("abc").hex() == "6778ad3f3f3f96b4522dca264174a23b"
    assert operator_id("0123456789abcdef").hex() == "a7d14acf946de04bda08a7635c5bc387"
    assert operator_id("0123456789abcdefg").hex() == "def945aa2d61328eee72c306c2f40008"
    assert operator_id("a much longer uid string with é ü").hex() == (
        "19c0ec4a63dd3657df40100e03b05044"
    )


def test_holds_operator_reads_the_metadata(tmp_path):
    chk = write_checkpoint(tmp_path, b"head" + operator_id("riverflink-source") + b"tail")
    assert holds_operator(str(chk), "riverflink-source") is True
    assert holds_operator(str(chk / "_metadata"), "riverflink-source") is True
    assert holds_operator(str(chk), "riverflink-learn-per-key") is False
    assert holds_operator(str(tmp_path / "gone"), "riverflink-source") is None


def _settings(tmp_path, source, **options):
    from riverflink.config.settings import JobSettings

    return JobSettings(source=str(source), output=str(tmp_path / "out"), **options)


def test_a_restore_resumes_the_read_position_of_the_same_input_only(tmp_path):
    from riverflink.pipeline.sources import source_uid
    from riverflink.pipeline.uids import file_source_uid

    watched = tmp_path / "in"
    watched.mkdir()
    other = tmp_path / "other.jsonl"
    other.write_text("{}\n")
    followed = file_source_uid(str(watched), True)
    chk = write_checkpoint(tmp_path, operator_id(followed))
    settings = _settings(tmp_path, watched, follow=True)
    assert source_uid(settings, None) == followed
    assert source_uid(settings, str(chk)) == followed  # the same input: resumed
    assert source_uid(_settings(tmp_path, other), str(chk)) == file_source_uid(
        str(other), False
    )  # another input: a uid of its own, read from the start
    assert file_source_uid(str(other), False) != file_source_uid(str(watched), False)


@pytest.mark.parametrize("was_followed", [True, False])
def test_a_restore_of_the_same_input_read_the_other_way_is_refused(tmp_path, was_followed):
    from riverflink.config.settings import SettingsError
    from riverflink.pipeline.sources import source_uid
    from riverflink.pipeline.uids import file_source_uid

    watched = tmp_path / "in"
    watched.mkdir()
    chk = write_checkpoint(tmp_path, operator_id(file_source_uid(str(watched), was_followed)))
    with pytest.raises(SettingsError, match="learn them twice|none that arrived since"):
        source_uid(_settings(tmp_path, watched, follow=not was_followed), str(chk))


def test_a_checkpoint_of_an_earlier_riverflink_resumes_its_source_as_then(tmp_path):
    from riverflink.pipeline.sources import source_uid

    data = tmp_path / "in.jsonl"
    data.write_text("{}\n")
    chk = write_checkpoint(tmp_path, operator_id("riverflink-source"))
    assert source_uid(_settings(tmp_path, data), str(chk)) == "riverflink-source"


def test_an_exit_savepoint_run_reads_its_input_whole(tmp_path):
    from riverflink.pipeline.sources import source_uid

    data = tmp_path / "in.jsonl"
    data.write_text("{}\n")
    settings = _settings(tmp_path, data, savepoint_on_exit=str(tmp_path / "sp"))
    first, second = source_uid(settings, None), source_uid(settings, None)
    assert first != second and first.startswith("riverflink-source-exit-")


def test_restore_of_state_in_the_earlier_layout_is_refused(tmp_path):
    import pytest

    from riverflink.config.settings import SettingsError
    from riverflink.runtime.configuration import _check_execution_mode
    from riverflink.state.descriptors import KEY_STATE_NAME

    old = write_checkpoint(tmp_path / "old", b"\x00$python-state-" + NAME.encode() + b"\x00")
    with pytest.raises(SettingsError, match="earlier riverflink"):
        _check_execution_mode(str(old), "process")
    new = write_checkpoint(
        tmp_path / "new", b"\x00$python-state-" + KEY_STATE_NAME.encode() + b"\x00"
    )
    _check_execution_mode(str(new), "process")  # accepted


def test_the_backend_of_a_checkpoint_is_read_from_its_metadata(tmp_path):
    from riverflink.config.checkpoints import backend_of
    from riverflink.config.settings import SettingsError
    from riverflink.runtime.configuration import _check_backend

    rocks = write_checkpoint(tmp_path / "r", b"...shared/abc 000012.sst MANIFEST-000004...")
    heap = write_checkpoint(tmp_path / "h", b"...chk-3/4f1e-uuid...")
    savepoint = tmp_path / "savepoint-1a2b3c-4d5e"
    savepoint.mkdir()
    (savepoint / "_metadata").write_bytes(b"...000012.sst...")
    assert backend_of(str(rocks)) == "rocksdb"
    assert backend_of(str(rocks / "_metadata")) == "rocksdb"
    assert backend_of(str(heap)) == "hashmap"
    assert backend_of(str(savepoint)) is None  # any backend reads a savepoint
    _check_backend(str(rocks), "rocksdb")
    _check_backend(str(savepoint), "hashmap")
    with pytest.raises(SettingsError, match="run with --state-backend rocksdb, or carry"):
        _check_backend(str(rocks), "hashmap")
