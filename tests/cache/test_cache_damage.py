"""Damaged, truncated and read-only embedding caches: one line and exit 1 instead of a bus error or a traceback;
``pa-geo cache verify`` / ``repair`` keep every readable entry. Truncated files are always opened in a subprocess
first (a bus error would kill pytest); read-only caches are made really read-only (a read-only bind mount, or the
``nobody`` user on a ``chmod -R a-w`` copy), since root ignores permission bits."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pa_geo.cache.store import EmbeddingStore
from pa_geo.cli import main
from pa_geo.errors import CacheError
from pa_geo.io.lmdb_pages import F_BIGDATA, P_BRANCH, PageFile, read_header, truncation
from pa_geo.io.protein import AMINO_ACIDS

ROOT = Path(__file__).resolve().parents[2]
N_PROTEINS = 120


def _cli(*argv: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": tempfile.gettempdir()}
    return subprocess.run([*prefix, sys.executable, "-m", "pa_geo.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=300)


def _fasta(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.write_text("".join(f">s{seed}_{i}\n{''.join(rng.choice(list(AMINO_ACIDS), rng.integers(30, 90)))}\n"
                            for i in range(n)))
    return path


def _embed(fasta: Path, cache: Path, *prefix: str) -> subprocess.CompletedProcess:
    return _cli("embed", "--backbone", "onehot", "--input", str(fasta), "--cache", str(cache), "--no-progress",
                prefix=prefix)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(FASTA of N_PROTEINS sequences, a cache root holding their onehot embeddings), made by ``pa-geo embed``."""
    d = tmp_path_factory.mktemp("built")
    fasta = _fasta(d / "in.fasta", N_PROTEINS)
    assert main(["embed", "--backbone", "onehot", "--input", str(fasta), "--cache", str(d / "cache"),
                 "--no-progress"]) == 0
    return fasta, d / "cache"


@pytest.fixture
def cache(built, tmp_path) -> Path:
    shutil.copytree(built[1], tmp_path / "cache")
    return tmp_path / "cache"


def _live_tree(data_file: Path) -> tuple[list[int], dict[int, tuple[bytes, int]]]:
    """(leaf pages the main tree reaches now, not stale copies in free pages; {leaf: (key, first overflow page)
    of a value stored in it})."""
    head = read_header(data_file)
    leaves, overflow, todo = [], {}, [head.roots[1]]
    with PageFile(data_file, head) as pf:
        while todo:
            pgno = todo.pop()
            kind, nodes, page = pf.nodes(pgno)
            if kind == P_BRANCH:
                todo.extend(n.child for n in nodes)
                continue
            leaves.append(pgno)
            for n in nodes:
                if n.flags & F_BIGDATA:
                    overflow[pgno] = (n.key, pf.overflow_run(page, n)[0])
    return sorted(leaves), overflow


@pytest.mark.slow  # subprocesses (each imports torch)
def test_truncated_by_one_page_is_one_line_exit_1(built, cache):
    data = cache / "onehot" / "data.mdb"
    os.truncate(data, data.stat().st_size - 4096)
    assert truncation(data, read_header(data)) is not None  # LMDB would touch the missing page
    out = _embed(built[0], cache)
    assert out.returncode == 1 and out.stdout == ""
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith(f"pa-geo embed: error: {cache / 'onehot'}: embedding cache is "
                                                f"damaged: data file truncated")
    assert f"run `pa-geo cache repair {cache / 'onehot'}`" in line
    for readonly in (True, False):  # in-process, now that the subprocess showed it cannot fault
        with pytest.raises(CacheError, match="data file truncated"):
            EmbeddingStore(cache / "onehot", readonly=readonly)


@pytest.mark.slow  # subprocesses (each imports torch)
def test_verify_and_repair_a_truncated_cache(built, cache, capsys):
    data = cache / "onehot" / "data.mdb"
    os.truncate(data, data.stat().st_size * 2 // 3)
    out = _cli("cache", "verify", str(cache))  # subprocess first: a salvage bug would be a bus error
    assert out.returncode == 1 and "DAMAGED (data file truncated" in out.stdout
    readable, corrupt, lost = (int(x) for x in out.stdout.splitlines()[1].split()[1:4])
    assert readable + corrupt + lost == N_PROTEINS and 0 < readable < N_PROTEINS
    assert main(["cache", "repair", str(cache)]) == 0
    assert f"repaired: kept {readable}, dropped {corrupt + lost}" in capsys.readouterr().out
    assert main(["cache", "verify", str(cache)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1:] == [str(readable), "0", "0", "ok"]
    assert main(["embed", "--backbone", "onehot", "--input", str(built[0]), "--cache", str(cache),
                 "--no-progress"]) == 0  # only what was lost is computed again
    out = capsys.readouterr().out
    assert f"embedded        {N_PROTEINS - readable}" in out and f"already cached  {readable}" in out


@pytest.mark.slow  # subprocesses (each imports torch)
def test_verify_and_repair_damaged_pages_and_entries(built, cache, capsys):
    data = cache / "onehot" / "data.mdb"
    head = read_header(data)
    raw = bytearray(data.read_bytes())
    leaves, overflow = _live_tree(data)
    assert len(leaves) >= 3
    with PageFile(data, head) as pf:
        lost_key = pf.nodes(leaves[1])[1][0].key
    raw[leaves[1] * head.page_size:(leaves[1] + 1) * head.page_size] = bytes(head.page_size)  # a leaf zeroed
    flipped, flip = overflow[next(leaf for leaf in leaves if leaf != leaves[1] and leaf in overflow)]
    raw[flip * head.page_size + 100] ^= 0xFF  # one byte inside one stored embedding
    data.write_bytes(bytes(raw))
    out = _cli("cache", "verify", str(cache / "onehot"), "--json")  # subprocess first, as above
    assert out.returncode == 1
    assert main(["cache", "verify", str(cache / "onehot"), "--json"]) == 1
    import json

    (report,) = json.loads(capsys.readouterr().out)
    # the zeroed leaf's entries are lost, or read back from older copies in free pages (those that still pass
    # their checksum); the flipped byte makes its entry corrupt
    assert report["bad_pages"] == 1 and flipped.hex()[:16] in report["corrupt_keys"]
    assert report["readable"] + report["lost"] + report["corrupt"] == N_PROTEINS and report["readable"] < N_PROTEINS
    code = ("import sys\nfrom pa_geo.cache.store import EmbeddingStore\n"
            "with EmbeddingStore(sys.argv[1]) as st:\n    st.get(bytes.fromhex(sys.argv[2]))\n")
    got = subprocess.run([sys.executable, "-c", code, str(cache / "onehot"), lost_key.hex()], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert got.returncode == 1 and got.stderr.strip().splitlines()[-1].startswith("pa_geo.errors.CacheError")
    with pytest.raises(CacheError) as err:  # a key under the zeroed page: LMDB's MDB_CORRUPTED as one line
        with EmbeddingStore(cache / "onehot", readonly=True) as st:
            st.get(lost_key)
    assert "\n" not in str(err.value) and "MDB_CORRUPTED" in str(err.value)
    assert "pa-geo cache repair" in str(err.value)
    assert main(["cache", "repair", str(cache)]) == 0
    capsys.readouterr()
    with EmbeddingStore(cache / "onehot", readonly=True) as st:
        assert len(st) == report["readable"] and st.meta.backbone == "onehot"


def test_unsalvageable_store_and_bad_paths(tmp_path, capsys):
    store = tmp_path / "cache" / "onehot"
    store.mkdir(parents=True)
    (store / "data.mdb").write_bytes(b"\0" * 8192)
    assert main(["cache", "verify", str(tmp_path / "cache")]) == 1
    assert "not an LMDB meta page" in capsys.readouterr().out
    assert main(["cache", "repair", str(store)]) == 1
    assert "not repairable" in capsys.readouterr().err
    assert (store / "data.mdb").read_bytes() == b"\0" * 8192 and not (store / "repair.tmp").exists()
    (tmp_path / "afile").write_text("x")
    for argv in (["cache", "verify", str(tmp_path / "afile")], ["cache", "verify", str(tmp_path / "nothing")],
                 ["embed", "--backbone", "onehot", "--input", str(_fasta(tmp_path / "x.fasta", 2)), "--cache",
                  str(tmp_path / "afile"), "--no-progress"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"pa-geo {argv[0]}: error: ")
    assert "afile: is a file, not a cache directory" in err


def _read_only_runs(built, cache: Path, prefix: tuple[str, ...], tmp: Path, new_store: bool = True) -> None:
    everything = _embed(built[0], cache, *prefix)
    assert everything.returncode == 0, everything.stderr
    assert f"already cached  {N_PROTEINS}" in everything.stdout and "embedded        0" in everything.stdout
    more = _embed(_fasta(tmp / "more.fasta", 3, seed=9), cache, *prefix)
    assert more.returncode == 1 and more.stdout == ""
    line = more.stderr.strip()
    assert "\n" not in line and "embedding cache is not writable here" in line
    assert "3 protein(s) are not cached yet" in line and "pass a writable --cache directory" in line
    if not new_store:
        return
    fresh = _cli("embed", "--backbone", "blosum62", "--input", str(built[0]), "--cache", str(cache),
                 "--no-progress", prefix=prefix)  # a backbone with no store yet: cannot create it
    assert fresh.returncode == 1 and "cannot create the embedding cache" in fresh.stderr
    assert len(fresh.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to "
                    "run as another user (root bypasses permission bits)")
def test_read_only_cache_permission_denied(built):
    tmp = Path(tempfile.mkdtemp())  # under /tmp, not pytest's 0700 directory: nobody must reach it
    try:
        tmp.chmod(0o755)
        shutil.copytree(built[1], tmp / "cache")
        shutil.copy(built[0], tmp / "in.fasta")
        subprocess.run(["chmod", "-R", "a-w", str(tmp / "cache")], check=True)
        nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
        if _cli("--help", prefix=nobody).returncode != 0:
            pytest.skip("the nobody user cannot run this checkout's Python")
        _read_only_runs((tmp / "in.fasta", tmp / "cache"), tmp / "cache", nobody, tmp, new_store=False)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(tmp)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow  # subprocesses (each imports torch)
def test_read_only_cache_on_a_read_only_file_system(built, cache, tmp_path):
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {cache} {cache} && mount -o remount,ro,"
                            f"bind {cache} && ! touch {cache}/probe"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("cannot make a read-only bind mount here (needs unshare -m and mount privileges)")
    script = tmp_path / "ro.sh"  # every command runs inside its own mount namespace with the cache mounted ro
    script.write_text(f'mount --bind {cache} {cache} && mount -o remount,ro,bind {cache} && exec "$@"\n')
    _read_only_runs(built, cache, ("unshare", "-m", "sh", str(script)), tmp_path)


def test_repair_without_meta_pages_rescues_every_entry(built, cache, capsys):
    data = cache / "onehot" / "data.mdb"
    raw = bytearray(data.read_bytes())
    raw[:2 * 4096] = bytes(2 * 4096)  # both meta pages gone: LMDB says MDB_INVALID, the page scan still works
    data.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match="embedding cache is damaged: meta page 0 is not an LMDB meta page"):
        EmbeddingStore(cache / "onehot")
    assert main(["cache", "repair", str(cache)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1:4] == [str(N_PROTEINS), "0", "?"]
    with EmbeddingStore(cache / "onehot") as st:
        assert len(st) == N_PROTEINS and st.meta.backbone == "onehot"
