"""Records that check themselves: one bad byte or one changed value in the middle of a real
run's telemetry log costs that one record — `export`, `plot` and `monitor` skip it and say
so, `train --resume` refuses and leaves the log as it is, `learnboard repair` writes a copy
with a gap marker that resumes — and a damaged checkpoint is named."""

from __future__ import annotations

import csv
import json
import random
import shutil
import zlib

import msgpack
import pytest
from learnboard.cli import main
from learnboard.host.records import scan_bytes
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import RunLog, inspect_log, read_log

RECORDS = 300


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory):
    """A real session on the emulated board, cut as a host crash would leave it after
    :data:`RECORDS` records: no summary, the log ending on a whole record."""
    from learnboard.studies.reliability.records import crashed_run

    path = crashed_run(tmp_path_factory.mktemp("runs"), RECORDS)
    scan = scan_bytes((path / "telemetry.msgpack").read_bytes())
    assert len(scan.records) == RECORDS and not scan.damaged and scan.tail is None
    return path


@pytest.fixture
def run(crashed_run, tmp_path):
    return RunFolder.open(shutil.copytree(crashed_run, tmp_path / crashed_run.name))


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _record_span(rf, i: int) -> tuple[int, int]:
    scan = scan_bytes(rf.log_path.read_bytes(), spans=True)
    return scan.spans[[r["i"] for r in scan.records].index(i)]


def _damage_checks(rf, capsys, damaged_i: int, offset: int) -> None:
    """What every command makes of a log whose record ``damaged_i`` (at ``offset``) is bad."""
    before = read_log(rf.log_path, warn=False)
    assert [r["i"] for r in before] == [i for i in range(RECORDS) if i != damaged_i]
    lost = json.loads(json.dumps(scan_bytes(
        (rf.path.parent / "pristine.msgpack").read_bytes()).records[damaged_i]))
    assert lost["kind"] == "tlm"
    n_tlm = sum(r["kind"] == "tlm" for r in before) + 1
    capsys.readouterr()

    # export: one warning line with the count and the offset, every other row written
    assert main(["export", str(rf.path), "--csv"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"skipped 1 damaged record at byte {offset} " in err[0]
    assert f"learnboard repair {rf.path}" in err[0]
    rows = _rows(rf.path / "export" / "telemetry.csv")
    assert len(rows) == n_tlm - 1 and str(lost["step"]) not in {r["step"] for r in rows}

    # plot and monitor: the same warning, and they carry on
    assert main(["plot", str(rf.path)]) == 0
    assert f"skipped 1 damaged record at byte {offset} " in capsys.readouterr().err
    assert main(["monitor", str(rf.path), "--from-start", "--json", "--seconds", "0"]) == 0
    out = capsys.readouterr()
    assert f"skipped 1 damaged record at byte {offset} " in out.err
    assert len(out.out.splitlines()) == RECORDS - 1

    # resume refuses, names the offset and what to do, and leaves the log byte for byte
    data = rf.log_path.read_bytes()
    assert main(["train", "--resume", str(rf.path), "--quiet", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert f"damaged at byte {offset} " in err and f"learnboard repair {rf.path}" in err
    assert f"learnboard train --resume {rf.path}-repaired" in err
    assert rf.log_path.read_bytes() == data

    # repair: a copy of 299 records and a gap marker in the lost record's place; it resumes
    assert main(["repair", str(rf.path)]) == 0
    out = capsys.readouterr().out
    copy = rf.path.with_name(rf.path.name + "-repaired")
    assert f"wrote {copy} ({RECORDS - 1} records + 1 gap marker)" in out
    assert rf.log_path.read_bytes() == data  # the run itself is untouched
    recs = read_log(copy / "telemetry.msgpack")
    assert [r["i"] for r in recs] == list(range(RECORDS))
    gap = recs[damaged_i]
    assert gap["kind"] == "event" and gap["name"] == "gap" and gap["skipped"] == 1
    assert gap["offset"] == offset and gap["source"] == str(rf.log_path)
    assert [r for r in recs if r is not gap] == before
    assert main(["train", "--resume", str(copy), "--quiet", "--no-plot", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 290
    final = read_log(copy / "telemetry.msgpack", warn=False)
    assert [r["i"] for r in final] == list(range(len(final))) and final[:RECORDS] == recs


def test_one_byte_overwritten_mid_file_costs_one_record(run, capsys):
    shutil.copy(run.log_path, run.path.parent / "pristine.msgpack")
    data = bytearray(run.log_path.read_bytes())
    mid = len(data) // 2
    scan = scan_bytes(bytes(data), spans=True)
    damaged = next(j for j, (s, e) in enumerate(scan.spans) if s <= mid < e)
    data[mid] ^= 0xFF
    run.log_path.write_bytes(bytes(data))
    _damage_checks(run, capsys, damaged, scan.spans[damaged][0])


def test_a_changed_value_that_is_still_msgpack_is_found_by_its_checksum(run, capsys):
    shutil.copy(run.log_path, run.path.parent / "pristine.msgpack")
    start, end = _record_span(run, 150)
    data = bytearray(run.log_path.read_bytes())
    at = data.index(b"\xa3err\xcb", start, end) + 5 + 7  # the last byte of the float64 err
    data[at] ^= 0x01
    run.log_path.write_bytes(bytes(data))
    unpacker = msgpack.Unpacker(raw=False)  # a stock reader sees nothing wrong
    unpacker.feed(bytes(data))
    assert [r["i"] for r in unpacker] == list(range(RECORDS))
    _damage_checks(run, capsys, 150, start)


def test_a_stock_unpacker_reads_one_map_per_record_and_the_documented_rule_checks_it(run):
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(run.log_path.read_bytes())
    recs = list(unpacker)
    assert [r["i"] for r in recs] == list(range(RECORDS))
    for rec in recs:
        assert list(rec)[-1] == "crc"
        assert rec.pop("crc") == zlib.crc32(msgpack.packb(rec, use_bin_type=True))
    for ck in run.checkpoints():
        data = json.loads(ck.read_text())
        crc = data.pop("crc")
        assert crc == zlib.crc32(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


def test_a_damaged_newest_checkpoint_is_named_and_the_one_before_is_used(run, capsys):
    *_, previous, newest = run.checkpoints()
    data = json.loads(newest.read_text())
    data["k"][0] += 0.125  # still a valid checkpoint, but not the one written
    newest.write_text(json.dumps(data))
    capsys.readouterr()
    # repair names it and leaves it out of the copy
    assert main(["repair", str(run.path)]) == 0
    assert f"{newest}: damaged (checksum mismatch" in capsys.readouterr().out
    copy = run.path.with_name(run.path.name + "-repaired")
    assert not (copy / "checkpoints" / newest.name).exists()
    assert (copy / "checkpoints" / previous.name).read_bytes() == previous.read_bytes()
    # resume says which one it passed over and continues from the one before
    assert main(["train", "--resume", str(run.path), "--quiet", "--no-plot", "--json"]) == 0
    err = capsys.readouterr().err
    assert f"damaged checkpoint {newest.name} (checksum mismatch" in err
    assert f"using {previous.name}" in err
    resumes = [r for r in read_log(run.log_path) if r.get("name") == "resume"]
    assert resumes[-1]["step"] == json.loads(previous.read_text())["step"]


def test_repair_of_a_clean_run_writes_nothing(run, capsys):
    assert main(["repair", str(run.path)]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert not run.path.with_name(run.path.name + "-repaired").exists()


def _log(path, n: int) -> bytes:
    with RunLog(path) as log:
        for s in range(n):
            log.append({"kind": "tlm", "step": s, "seq": s, "err": 1e-3 * s, "rel_err": 0.5, "pwr": 3e-4,
                        "lam": 0.0, "n": 4, "dt": 900, "dtmax": 1200, "flt": 0, "bad": 0, "board_t": 9 * s,
                        "k": [2.5, 1.25, 3.0]})
    return path.read_bytes()


def test_one_bad_byte_at_twenty_random_offsets_costs_one_record_each_time(tmp_path):
    data = _log(tmp_path / "t.msgpack", RECORDS)
    rng = random.Random(19)
    for _ in range(20):
        off = rng.randrange(len(data))
        bad = bytearray(data)
        bad[off] = (bad[off] + rng.randrange(1, 256)) % 256
        scan = scan_bytes(bytes(bad))
        assert len(scan.records) == RECORDS - 1, off
        if scan.damaged:  # inside the log: one record skipped, its neighbours read
            (d,) = scan.damaged
            assert d.records == 1 and d.offset <= off < d.offset + d.length
        else:  # the last record: a damaged tail, dropped as a cut one
            assert scan.tail is not None and scan.tail.offset <= off


def test_an_older_log_without_checksums_is_read_and_continued(tmp_path):
    path = tmp_path / "t.msgpack"
    old = b"".join(msgpack.packb({"kind": "tlm", "step": s, "i": s, "t": 1.5 + s}) for s in range(5))
    path.write_bytes(old + old[-3:-1])  # and a record cut by a crash
    scan = inspect_log(path)
    assert [r["i"] for r in scan.records] == list(range(5)) and scan.unchecked == 5 and not scan.damaged
    with RunLog(path, resume=True) as log:
        assert log.append({"kind": "tlm", "step": 5}) == 5
    raw = path.read_bytes()
    assert raw.startswith(old) and raw.endswith(b"\xa3crc\xce" + raw[-4:])
    assert [r["i"] for r in read_log(path)] == list(range(6))
    # after a checksummed record, a record without one is damage, not an older learnboard's
    path.write_bytes(raw + msgpack.packb({"kind": "tlm", "step": 6, "i": 6, "t": 9.0}) + raw[len(old):])
    scan = inspect_log(path)
    assert len(scan.damaged) == 1 and scan.damaged[0].reason == "no checksum after checksummed records"


def test_mid_file_corruption_at_twenty_random_offsets_loses_no_good_record(crashed_run, tmp_path):
    """The lab campaign's corruption part, through the command line: each byte costs its
    own record only; export warns, resume refuses with the log unchanged, repair keeps
    every other record byte for byte."""
    from learnboard.studies.reliability.records import run_corruption

    report = run_corruption(crashed_run, tmp_path, offsets=20, seed=19)
    assert report.records == RECORDS and len(report.shots) == 20
    assert report.ok, [s for s in report.shots if not (s.export_ok and (s.tail or s.resume_refused)
                                                       and s.repaired and s.lost == 0)]
    assert sum(s.lost for s in report.shots) == 0


@pytest.mark.parametrize("damage,lost", [
    (lambda d: d[:9000] + bytes(4096) + d[13096:], None),  # a block of zeros (a lost disk block)
    (lambda d: d[:20000] + b"stray" + d[20000:], 1),  # bytes inserted
    (lambda d: d[:20000] + d[20010:], 1),  # bytes gone
    (lambda d: d.replace(b"\xa3crc", b"\xa3drc", 1), 1),  # the first record's checksum key
])
def test_the_records_lost_are_counted_from_the_indices_around_the_damage(tmp_path, damage, lost):
    data = _log(tmp_path / "t.msgpack", RECORDS)
    clean = scan_bytes(data, spans=True)
    scan = scan_bytes(damage(data))
    (d,) = scan.damaged
    got = [r["i"] for r in scan.records]
    assert d.records == RECORDS - len(got) and got == [i for i in range(RECORDS) if not
                                                      d.first_i <= i < d.first_i + d.records]
    if lost is not None:
        assert d.records == lost
    assert d.offset in {s for s, _ in clean.spans}  # named where its first lost record began


def test_monitor_passes_over_a_damaged_record_once_a_good_one_follows_it(tmp_path):
    from learnboard.host.follow import LogFollower
    from learnboard.host.runlog import pack

    path = tmp_path / "telemetry.msgpack"
    good = [pack({"kind": "tlm", "step": s, "i": s, "t": 1.0}) for s in range(5)]
    bad = bytearray(good[3])
    bad[len(bad) // 2] ^= 0x55
    f = LogFollower(path)
    path.write_bytes(b"".join(good[:3]) + bad)
    assert [r["i"] for r in f.poll()] == [0, 1, 2]
    assert f.new_damage() is None  # at the end it may still be a record being written
    with open(path, "ab") as out:
        out.write(good[4][:7])
    assert f.poll() == [] and f.new_damage() is None
    with open(path, "ab") as out:
        out.write(good[4][7:])
    assert [r["i"] for r in f.poll()] == [4]
    offset = sum(map(len, good[:3]))
    assert f"skipped 1 damaged record at byte {offset} " in f.new_damage()
    assert f.new_damage() is None  # said once
