"""ATOM3D and TAPE/PEER LMDB readers on damaged files in their released formats: truncated (opened in a subprocess
first: a bus error would kill pytest), damaged pages, a negative ``num_examples``: one DatasetError line each."""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest

from pa_geo.formats.atom3d import Atom3DLMDB, lmdb_summary
from pa_geo.formats.peer import PEER_LMDB_SOURCES
from pa_geo.formats.tape_lmdb import write_tape_lmdb
from pa_geo.errors import DatasetError
from pa_geo.io.lmdb_pages import P_BRANCH, PageFile, read_header, truncation
from pa_geo.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests" / "data" / "atom3d" / "legacy_pdb_generic"  # written by atom3d's own writer
# Load split sys.argv[2] of task sys.argv[1] from each root that follows: one line per root, the count or the error.
LOAD = ("import sys\nfrom pa_geo.errors import PaGeoError\nfrom pa_geo.tasks import get_task\n"
        "for root in sys.argv[3:]:\n    try:\n        print(len(get_task(sys.argv[1]).load(root, sys.argv[2])))\n"
        "    except PaGeoError as err:\n        print(err)\n")


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _truncate_until_damaged(data: Path) -> None:
    """Cut the file by 4 KiB, then more, until a page LMDB reaches is gone (what a full disk leaves)."""
    size = data.stat().st_size
    for cut in range(4096, size, 4096):
        os.truncate(data, size - cut)
        if truncation(data, read_header(data)):
            return
    raise AssertionError("no truncation damaged the file")


def _zero_a_leaf(data: Path) -> None:
    head = read_header(data)
    with PageFile(data, head) as pf:
        todo, leaves = [head.roots[1]], []
        while todo:
            pgno = todo.pop()
            kind, nodes, _ = pf.nodes(pgno)
            if kind == P_BRANCH:
                todo.extend(n.child for n in nodes)
            else:
                leaves.append(pgno)
    raw = bytearray(data.read_bytes())
    ps = head.page_size
    raw[leaves[-1] * ps:(leaves[-1] + 1) * ps] = bytes(ps)
    data.write_bytes(bytes(raw))


@pytest.fixture
def atom3d(tmp_path) -> Path:
    shutil.copytree(LEGACY, tmp_path / "a3", ignore=shutil.ignore_patterns("lock.mdb"))
    return tmp_path / "a3"


@pytest.fixture
def peer(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    recs = [{"primary": "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 238)), "protein_length": 238,
             "log_fluorescence": np.array([rng.normal()], np.float32), "num_mutations": 3, "id": f"gfp{i}".encode()}
            for i in range(300)]
    path = tmp_path / PEER_LMDB_SOURCES["fluorescence"].pattern.format(split="train")
    path.parent.mkdir(parents=True)
    write_tape_lmdb(path, recs)
    return tmp_path


@pytest.mark.slow  # subprocesses (each imports torch)
def test_truncated_atom3d_lmdb_under_inspect_and_the_reader(atom3d):
    _truncate_until_damaged(atom3d / "data.mdb")
    out = _run("-m", "pa_geo.cli", "inspect", str(atom3d))
    assert out.returncode == 1 and "ERROR: " in out.stdout
    line = next(x for x in out.stdout.splitlines() if "ERROR" in x).split("ERROR: ")[1]
    assert line.startswith(f"{atom3d}: ATOM3D LMDB is damaged: data file truncated to")
    assert line.endswith("; download or extract the dataset again")
    with pytest.raises(DatasetError, match="data file truncated"):
        Atom3DLMDB(atom3d)


@pytest.mark.slow  # a subprocess (imports torch)
def test_truncated_and_damaged_peer_lmdb(peer, tmp_path):
    zeroed, cut = tmp_path / "zeroed", tmp_path / "cut"
    for root in (zeroed, cut):
        shutil.copytree(peer / "fluorescence", root / "fluorescence")
    _zero_a_leaf(zeroed / "fluorescence" / "fluorescence_train.lmdb" / "data.mdb")
    _truncate_until_damaged(cut / "fluorescence" / "fluorescence_train.lmdb" / "data.mdb")
    out = _run("-c", LOAD, "fluorescence", "train", str(peer), str(zeroed), str(cut))  # first: LMDB may abort
    assert out.returncode == 0, out.stderr
    intact, damaged, truncated = out.stdout.strip().splitlines()
    assert intact == "300"
    assert damaged.startswith(f"{zeroed / 'fluorescence' / 'fluorescence_train.lmdb'}: TAPE/PEER LMDB is damaged: "
                              f"damaged page: page ")
    assert truncated.startswith(f"{cut / 'fluorescence' / 'fluorescence_train.lmdb'}: TAPE/PEER LMDB is damaged: "
                                f"data file truncated to ")
    assert truncated.endswith("; extract the dataset archive again")
    for root in (zeroed, cut):
        with pytest.raises(DatasetError, match="extract the dataset archive again"):
            get_task("fluorescence").load(root, "train")


def test_damaged_atom3d_pages_and_fields(atom3d):
    env = lmdb.open(str(atom3d))
    with env.begin(write=True) as txn:
        txn.put(b"num_examples", b"-3")
    env.close()
    with pytest.raises(DatasetError, match=r"num_examples is -3, expected a count >= 0") as err:
        Atom3DLMDB(atom3d)
    assert "\n" not in str(err.value)
    env = lmdb.open(str(atom3d))
    with env.begin(write=True) as txn:
        txn.put(b"num_examples", b"10")
        txn.put(b"id_to_idx", b"[1, 2]")
    env.close()
    with pytest.raises(DatasetError, match=r"\[id_to_idx\]: expected a dict of id -> index, got list"):
        lmdb_summary(atom3d)
    (atom3d / "data.mdb").write_bytes(b"\0" * 8192)
    with pytest.raises(DatasetError, match="ATOM3D LMDB is damaged: meta page 0 is not an LMDB meta page"):
        Atom3DLMDB(atom3d)


def test_damaged_leaf_is_one_line_in_process(peer, atom3d):
    _zero_a_leaf(atom3d / "data.mdb")  # the deep check reads every tree page before LMDB does
    with pytest.raises(DatasetError, match=r"ATOM3D LMDB is damaged: damaged page: page \d+ is not a branch"):
        Atom3DLMDB(atom3d)
    path = peer / "fluorescence" / "fluorescence_train.lmdb"
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"num_examples", pickle.dumps(301))
    env.close()
    with pytest.raises(DatasetError, match=r"fluorescence_train.lmdb\[300\]: record missing"):
        get_task("fluorescence").load(peer, "train")
