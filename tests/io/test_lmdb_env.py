"""pa_geo.io.lmdb_env: meta-page parsing against LMDB's own numbers, truncation caught before mapping (a SIGBUS
otherwise, so every truncated file is opened in a subprocess first), every lmdb error as one line."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest

from pa_geo.errors import DatasetError
from pa_geo.io.lmdb_env import LmdbAdvice, describe, lmdb_errors, open_env
from pa_geo.io.lmdb_pages import LmdbFileDamaged, check_file_size, missing_page, read_header

ADVICE = LmdbAdvice("test LMDB", DatasetError, damaged="write it again")
ROOT = Path(__file__).resolve().parents[2]
# Read every value with plain py-lmdb (no checks): exit 0 and print the byte count, or die of the bus error.
RAW_READ = ("import lmdb, sys\nenv = lmdb.open(sys.argv[1], readonly=True, lock=False)\n"
            "with env.begin() as txn:\n    print(sum(len(v) for _, v in txn.cursor()))\n")
# The same read through open_env: one line on stderr and exit 1 when refused.
CHECKED_READ = ("import sys\nfrom pa_geo.errors import DatasetError\n"
                "from pa_geo.io.lmdb_env import LmdbAdvice, open_env\n"
                "try:\n    env = open_env(sys.argv[1], LmdbAdvice('test LMDB', DatasetError, 'write it again'))\n"
                "except DatasetError as err:\n    sys.exit(f'{err}')\n"
                "with env.begin() as txn:\n    print(sum(len(v) for _, v in txn.cursor()))\n")


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


def _workload(path: Path, seed: int, txns: int) -> None:
    """Random puts / overwrites / deletes of 10 B .. 40 kB values (overflow pages), ``txns`` commits."""
    rng = random.Random(seed)
    env = lmdb.open(str(path), map_size=1 << 26)
    keys: list[bytes] = []
    for _ in range(txns):
        with env.begin(write=True) as txn:
            for _ in range(30):
                r = rng.random()
                if r < 0.15 and keys:
                    txn.delete(rng.choice(keys))
                elif r < 0.3 and keys:
                    txn.put(rng.choice(keys), rng.randbytes(rng.choice([10, 3000, 9000, 40000])))
                else:
                    keys.append(rng.randbytes(32))
                    txn.put(keys[-1], rng.randbytes(rng.choice([10, 100, 3000, 9000, 40000])))
    env.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lmdb") / "db"
    _workload(path, seed=1, txns=3)
    return path


def test_header_matches_what_lmdb_reports(store):
    head = read_header(store)
    env = lmdb.open(str(store), readonly=True, lock=False)
    info, stat = env.info(), env.stat()
    env.close()
    assert (head.page_size, head.last_page, head.txnid, head.entries) == (
        stat["psize"], info["last_pgno"], info["last_txnid"], stat["entries"])
    assert head.file_size == (store / "data.mdb").stat().st_size >= head.required_bytes and not head.short
    assert check_file_size(store / "data.mdb") == head  # the data file itself works as well as its directory


def test_file_shorter_than_last_page_can_be_valid(tmp_path):
    # Pages freed in the commit that allocated them are never written (mdb_page_flush skips P_LOOSE pages): the
    # file ends before mm_last_pg although nothing reachable is missing. Seed 136 makes such a file at commit 4.
    _workload(tmp_path / "db", seed=136, txns=4)
    head = read_header(tmp_path / "db")
    assert head.short and missing_page(tmp_path / "db", head) is None
    raw = _python(RAW_READ, str(tmp_path / "db"))
    assert raw.returncode == 0
    checked = _python(CHECKED_READ, str(tmp_path / "db"))
    assert checked.returncode == 0 and checked.stdout == raw.stdout


def test_truncated_file_is_one_line_not_a_bus_error(store, tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    data = (store / "data.mdb").read_bytes()
    (db / "data.mdb").write_bytes(data[:len(data) // 2])
    raw = _python(RAW_READ, str(db))
    assert raw.returncode == -7  # SIGBUS: what every reader did before
    checked = _python(CHECKED_READ, str(db))
    assert checked.returncode == 1 and checked.stdout == ""
    line = checked.stderr.strip()
    assert "\n" not in line and line.startswith(f"{db}: test LMDB is damaged: data file truncated")
    assert line.endswith("; write it again")
    with pytest.raises(DatasetError, match="truncated to"):  # in-process now that the subprocess proved it safe
        open_env(db, ADVICE)


@pytest.mark.parametrize("damage, reason", [
    ("empty", "data file is empty"), ("magic", "meta page 0 is not an LMDB meta page"),
    ("meta1", "meta page 1 is not an LMDB meta page"), ("psize", "impossible page size"),
    ("version", "LMDB data version 7"), ("text", "not an LMDB meta page"),
])
def test_damaged_meta_pages(store, tmp_path, damage, reason):
    data = bytearray((store / "data.mdb").read_bytes())
    psize = read_header(store).page_size
    if damage == "empty":
        data = bytearray()
    elif damage == "magic":
        data[16:20] = b"\0\0\0\0"
    elif damage == "meta1":
        data[psize + 10:psize + 12] = b"\0\0"  # P_META flag gone
    elif damage == "psize":
        data[40:44] = (1000).to_bytes(4, "little")
    elif damage == "version":
        data[20:24] = (7).to_bytes(4, "little")
    else:
        data = bytearray(b"HEADER    not an lmdb file\n" * 400)
    (tmp_path / "data.mdb").write_bytes(bytes(data))
    with pytest.raises(LmdbFileDamaged, match=reason):
        check_file_size(tmp_path)
    with pytest.raises(DatasetError) as err:
        open_env(tmp_path, ADVICE)
    assert "\n" not in str(err.value) and reason in str(err.value) and "write it again" in str(err.value)


def test_corrupted_page_is_one_line(store, tmp_path):
    data = bytearray((store / "data.mdb").read_bytes())
    head = read_header(store)
    root = head.roots[1]
    data[root * head.page_size + 10:root * head.page_size + 12] = b"\0\0"  # root page: neither branch nor leaf
    (tmp_path / "data.mdb").write_bytes(bytes(data))
    env = open_env(tmp_path, ADVICE)  # size and meta pages are fine: the damage shows when the tree is read
    with pytest.raises(DatasetError) as err, lmdb_errors(tmp_path, ADVICE), env.begin() as txn:
        txn.get(b"anything")
    msg = str(err.value)
    assert "\n" not in msg and "is damaged: LMDB reports mdb_get: MDB_CORRUPTED" in msg
    assert msg.endswith("write it again")


def test_paths_and_access_errors(tmp_path):
    with pytest.raises(DatasetError, match="no test LMDB here"):
        open_env(tmp_path / "absent", ADVICE)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="meta page 0 is cut off"):
        open_env(tmp_path / "file", ADVICE)
    with pytest.raises(DatasetError, match="cannot be used: Not a directory|Not a directory"):
        open_env(tmp_path / "file" / "sub", ADVICE, readonly=False)
    assert describe(PermissionError(13, "Permission denied"))[0] == "access"
    assert describe(lmdb.ReadonlyError("x", 13))[0] == "access"
    assert describe(lmdb.Error("/c/esm1b: Read-only file system"))[0] == "access"
    assert describe(lmdb.CorruptedError("mdb_get", -30796))[0] == "damaged"
    assert describe(lmdb.DiskError("x", 28))[0] == "full"
