"""Grouped deterministic splits on the shipped data."""
from __future__ import annotations

import numpy as np
import pytest

from pa_geo.demo.solubility import load_solubility
from pa_geo.datasets.splits import pdb_id_groups, sequence_similarity_groups, split_by_group
from pa_geo.demo.data import split_solubility, split_structuredb
from pa_geo.formats.structuredb import load_structuredb
from pa_geo.errors import ConfigError
from tests.helpers import STRUCTUREDB


def _check_partition(splits, n, groups):
    parts = [splits[k] for k in ("train", "valid", "test")]
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(np.unique(allidx)) == n  # disjoint and covering
    assert all((np.diff(p) > 0).all() for p in parts)
    groups = np.asarray(groups).astype(str)
    owner = {}
    for k, p in enumerate(parts):
        for g in set(groups[p]):
            assert owner.setdefault(g, k) == k, f"group {g} straddles splits"


def test_split_by_group_synthetic_groups():
    ids = [f"x{i}" for i in range(1000)]
    groups = np.random.default_rng(1).integers(0, 150, 1000)
    s = split_by_group(ids, groups, (0.7, 0.2, 0.1), seed=3)
    _check_partition(s, 1000, groups)
    sizes = np.array([len(s[k]) for k in ("train", "valid", "test")])
    assert np.abs(sizes - np.array([700, 200, 100])).max() <= np.bincount(groups).max()
    again = split_by_group(ids, groups, (0.7, 0.2, 0.1), seed=3)
    assert all((again[k] == s[k]).all() for k in s)
    other = split_by_group(ids, groups, (0.7, 0.2, 0.1), seed=4)
    assert any(len(other[k]) != len(s[k]) or (other[k] != s[k]).any() for k in s)


def test_split_by_group_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="fractions"):
        split_by_group(["a", "b"], [0, 1], (0.5, 0.6, 0.1))
    with pytest.raises(ConfigError, match="not unique"):
        split_by_group(["a", "a"], [0, 1])
    with pytest.raises(ConfigError, match="2 ids but 1 group"):
        split_by_group(["a", "b"], [0])


def test_structuredb_split_by_pdb_entry():
    ids = [r.protein.id for r in load_structuredb(STRUCTUREDB)]
    # the shipped subset has one chain per entry: add sibling chains of real entries to exercise grouping
    ids = ids + [i.split("_")[0] + "_Z" for i in ids[:50]]
    groups = pdb_id_groups(ids)
    assert groups[0] == "12AS"
    s = split_structuredb(ids)
    _check_partition(s, len(ids), groups)
    assert abs(len(s["train"]) - 0.8 * len(ids)) <= 3
    assert all((split_structuredb(ids)[k] == s[k]).all() for k in s)


@pytest.fixture(scope="module")
def solubility():
    return load_solubility()


def test_sequence_similarity_groups_rule(solubility):
    seq = [r.protein.sequence for r in solubility]
    base = seq[0][:200]
    mutant = base[:50] + "W" + base[51:120] + "W" + base[121:]   # 99% identical
    fragment = base[40:160]                                       # a fragment of base
    tag = "MSGLNDIFEAQKIEWHEHHHHHHENLYFQSHM"                      # real NESG expression tag
    unrelated = seq[5]
    tagged = [tag + s for s in seq[10:50]]
    labels = sequence_similarity_groups([base, mutant, fragment, unrelated] + tagged)
    assert labels[0] == labels[1] == labels[2] != labels[3]
    assert len(set(labels[4:].tolist())) == 40  # a shared tag alone does not link proteins
    assert labels.tolist() == sequence_similarity_groups([base, mutant, fragment, unrelated] + tagged).tolist()


def test_solubility_split_keeps_similar_sequences_together(solubility):
    recs = solubility
    names, seqs = [r.protein.id for r in recs], [r.protein.sequence for r in recs]
    groups = sequence_similarity_groups(seqs)
    assert 3000 < groups.max() + 1 < 3230  # some real near-duplicates are linked
    s = split_solubility(names, seqs)
    _check_partition(s, len(recs), groups)
    assert abs(len(s["test"]) - 323) <= 4
    assert all((split_solubility(names, seqs)[k] == s[k]).all() for k in s)
