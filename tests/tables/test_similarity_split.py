"""Similarity splits of label tables: MMseqs2 when present, the k-mer grouping otherwise, written once and reused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pa_geo.tables import similarity_split as ss
from pa_geo.tables import LabelTable, TableSettings
from pa_geo.errors import ConfigError
from pa_geo.io.protein import AMINO_ACIDS

HAVE_MMSEQS = ss.mmseqs_program() is not None


def families(n_families: int, members: int, identity: float, length: int = 120, seed: int = 0) -> list[list[str]]:
    """Random ancestor sequences, each with ``members`` copies mutated to about ``identity`` of the ancestor."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_families):
        root = rng.choice(list(AMINO_ACIDS), length)
        fam = []
        for _ in range(members):
            seq = root.copy()
            hit = rng.random(length) > identity
            seq[hit] = rng.choice(list(AMINO_ACIDS), int(hit.sum()))
            fam.append("".join(seq))
        out.append(fam)
    return out


def family_table(tmp_path: Path, fams: list[list[str]], name: str = "labels.csv") -> Path:
    rows = [f"f{i}m{j},{seq},{i % 2}" for i, fam in enumerate(fams) for j, seq in enumerate(fam)]
    path = tmp_path / name
    path.write_text("id,sequence,label\n" + "\n".join(rows) + "\n")
    return path


def split_of_families(split: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rid, name in split.items():
        out.setdefault(rid.split("m")[0], set()).add(name)
    return out


def test_kmer_split_keeps_families_together_and_is_written_once(tmp_path, monkeypatch):
    fams = families(20, 4, identity=0.95)
    path = family_table(tmp_path, fams)
    ids = [f"f{i}m{j}" for i in range(20) for j in range(4)]
    seqs = [(s,) for fam in fams for s in fam]
    params = ss.SplitParams(method="kmer", fractions=(0.6, 0.2, 0.2), seed=3)
    split = ss.table_split(path, ids, lambda: seqs, params)
    assert all(len(v) == 1 for v in split_of_families(split).values())  # no family straddles two splits
    assert sorted(set(split.values())) == ["test", "train", "valid"]
    assert abs(sum(v == "train" for v in split.values()) - 48) <= 4
    text = ss.split_file_for(path).read_text()
    assert "# method: kmer: shared 5-mers" in text and "# fractions: 0.6,0.2,0.2" in text and "# seed: 3" in text

    def no_recompute():
        raise AssertionError("the split file must be reused")
    assert ss.table_split(path, ids, no_recompute, params) == split
    # a different seed deals the clusters differently (the file is per settings, so make a new one)
    other = ss.table_split(tmp_path / "copy.csv", ids, lambda: seqs, ss.SplitParams("kmer", fractions=(0.6, 0.2, 0.2),
                                                                                    seed=4))
    assert other != split


def test_changed_table_or_settings_is_one_clear_line(tmp_path):
    path = tmp_path / "t.csv"
    ids = ["a", "b", "c", "d"]
    seqs = [("MKTAYIAKQRQISFVKSHFSRQ",), ("GSHMLEDPVDAFQ",), ("PEPTIDEPEPTIDEPEPTIDE",), ("WWWWCCCCHHHH",)]
    ss.table_split(path, ids, lambda: seqs, ss.SplitParams("kmer", fractions=(0.5, 0.25, 0.25)))
    with pytest.raises(ConfigError) as err:
        ss.table_split(path, ids + ["e", "f"], lambda: seqs, ss.SplitParams("kmer", fractions=(0.5, 0.25, 0.25)))
    msg = str(err.value)
    assert "\n" not in msg and "2 id(s) are not in its split file t.csv.split.csv (e, f)" in msg
    assert "delete t.csv.split.csv to split again" in msg
    with pytest.raises(ConfigError, match=r"made with fractions '0.5,0.25,0.25' \(asked: '0.8,0.1,0.1'\)"):
        ss.table_split(path, ids, lambda: seqs, ss.SplitParams("kmer"))
    assert ss.table_split(path, ids[:2], lambda: seqs, ss.SplitParams("auto", fractions=(0.5, 0.25, 0.25)))


def test_auto_without_mmseqs_falls_back_to_kmer(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ss.mmseqs_program() is None and ss.resolve_method("auto") == "kmer"
    with pytest.raises(ConfigError, match="mmseqs program is not on PATH"):
        ss.resolve_method("mmseqs")
    path = family_table(tmp_path, families(6, 3, identity=0.95))
    table = LabelTable(TableSettings(path, type="binary", split_fractions=(0.5, 0.25, 0.25)))
    assert "# method: kmer" in ss.split_file_for(path).read_text()
    assert all(len(v) == 1 for v in split_of_families(dict(zip(table.ids(), (e.split for e in table.entries))))
               .values())


def test_pairs_group_by_their_two_clusters():
    a, b, c = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIE", "GSHMLEDPVDAFQLAPSNSELLRIAK", "WWPPCCHHWWPPCCHHWWPPCCHHKKLL"
    groups, method = ss.group_items([(a, b), (b, a), (a, c), (None,)], ss.SplitParams("kmer"))
    assert groups[0] == groups[1] != groups[2] and groups[3] == "row3" and method.startswith("kmer")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MMSEQS, reason="mmseqs not on PATH (apt-get install mmseqs2)")
def test_mmseqs_groups_remote_homologues_the_kmer_rule_misses(tmp_path):
    fams = families(8, 3, identity=0.7, length=150, seed=1)  # members ~50% identical to each other
    kmer = ss.sequence_similarity_groups([s for fam in fams for s in fam])
    assert len(set(kmer)) > 8  # ~50% identity is below what the 5-mer rule links
    path = family_table(tmp_path, fams)
    table = LabelTable(TableSettings(path, type="binary", split_method="mmseqs", split_fractions=(0.5, 0.25, 0.25)))
    lines = ss.split_file_for(path).read_text().splitlines()
    assert "# method: mmseqs2 easy-cluster --min-seq-id 0.3 -c 0.8 --cov-mode 0 (MMseqs2 " in "\n".join(lines)
    group = dict(line.split(",")[::2] for line in lines if not line.startswith(("#", "id,")))
    for f in range(8):  # MMseqs2 at 30% identity puts each family in one cluster, and families apart
        assert len({group[f"f{f}m{j}"] for j in range(3)}) == 1
    assert len(set(group.values())) == 8
    assert all(len(v) == 1 for v in split_of_families(dict(zip(table.ids(), (e.split for e in table.entries))))
               .values())


def test_processes_opening_a_table_at_once_make_one_split(tmp_path):
    import threading
    import time

    calls = []

    def slow_sequences():
        calls.append(1)
        time.sleep(0.3)
        return [("MKTAYIAKQRQISFVKSHFSRQ",), ("GSHMLEDPVDAFQ",), ("PEPTIDEPEPTIDE",), ("WWWWCCCCHHHH",)]

    results = []
    params = ss.SplitParams("kmer", fractions=(0.5, 0.25, 0.25))
    threads = [threading.Thread(target=lambda: results.append(
        ss.table_split(tmp_path / "t.csv", ["a", "b", "c", "d"], slow_sequences, params))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 3 and results[0] == results[1] == results[2]
