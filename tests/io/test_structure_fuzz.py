"""Seeded fuzz of the structure readers on real PDB / mmCIF files (truncation, byte flips, line duplication and
deletion, stray MODEL / ENDMDL, huge and NaN coordinates): every mutation parses or is refused in one line, and a
mutation that keeps every atom record gives the same residues or is refused. 10,000 of them: benchmarks/fuzz.py."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers.structure_fuzz import KINDS, SEEDS, load_seeds, run



N_MUTATIONS = 256  # every (seed file, kind) pair 4 times; about 8 s


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return list(run(load_seeds(), N_MUTATIONS, seed=12, workdir=tmp_path_factory.mktemp("fuzz")))


def test_every_mutation_parses_or_is_refused_in_one_line(results):
    bad = [r for r in results if r[3] == "other-exception"]
    assert not bad, bad[:5]
    assert len(results) == N_MUTATIONS
    assert {r[1] for r in results} == set(KINDS) and {r[0] for r in results} == set(SEEDS)


def test_mutations_keeping_every_atom_record_keep_the_residues(results):
    kept = [r for r in results if r[2]]
    changed = [r for r in kept if r[3].startswith("parsed") and not r[5]]
    assert not changed, changed[:5]
    # the property is exercised: stray MODEL / ENDMDL records and duplicated lines both parse and get refused
    counts = Counter((r[1], r[3]) for r in kept)
    assert counts["stray_endmdl", "parsed-same"] and counts["stray_model", "refused"]
    assert counts["dup_line", "parsed-same"] and counts["dup_line", "refused"]


def test_impossible_coordinates_never_parse_into_a_protein(results):
    huge = [r for r in results if r[1] == "huge_coord"]
    # PDB columns cannot hold any of the values written; mmCIF refuses all but 99999.9 (inside +-1e5 A)
    assert all(r[3] == "refused" for r in huge if not r[0].endswith(".cif.gz")), huge
    assert all("coordinate" in r[4] for r in huge if r[3] == "refused")
