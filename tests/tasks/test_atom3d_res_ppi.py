"""ATOM3D RES environments and PPI pairs (+ the per-epoch PPI sampler) on LMDBs in atom3d's format, real frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from tests.helpers.atom3d import RES_CLASS, RES_RADIUS, legacy_frames, res_item, write_atom3d_lmdb
from pa_geo.formats.atom3d_ppi import sample_ppi_pairs
from pa_geo.formats.atom3d_tasks import RES_CLASSES
from pa_geo.errors import DatasetError
from pa_geo.tasks import get_task
from pa_geo.io.structure import one_letter

PICKS = [("A", 130), ("A", 150), ("A", 152), ("A", 200)]  # 1AHS chain A residues (GLY, ...)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return legacy_frames()


def _chain(df: pd.DataFrame, chain: str) -> pd.DataFrame:
    return df[(df["chain"] == chain) & (df["hetero"].str.strip() == "")].reset_index(drop=True)


def _write_res(root: Path, items: list[dict], split: str = "val", indices: str = "1\n") -> None:
    """The RES release layout: one raw LMDB + split-by-cath-topology/indices/<split>_indices.txt."""
    write_atom3d_lmdb(root / "raw" / "RES" / "data", items)
    idx = root / "split-by-cath-topology" / "indices"
    idx.mkdir(parents=True, exist_ok=True)
    (idx / f"{split}_indices.txt").write_text(indices)


def test_res_one_record_per_environment(tmp_path: Path, frames) -> None:
    item = res_item(frames["1ahsA.pdb"], "1ahsA", PICKS)
    assert len(item["labels"]) == 4
    _write_res(tmp_path, [res_item(frames["1ahsA.pdb"], "other", PICKS[:1]), item])
    spec = get_task("res")
    assert (spec.level, spec.label_type, spec.num_outputs) == ("graph", "multiclass", 20)
    assert spec.options["center_key"] == "center_atom_index" and spec.options["graph"] == "atom"
    records = list(spec.load(tmp_path, "val"))  # item 1 only: its 4 labelled residues
    assert len(records) == 4
    atoms = item["atoms"]
    for rec, row, idx in zip(records, item["labels"].itertuples(), item["subunit_indices"]):
        chain, number, name = row.subunit.split("_")
        number = int(number)
        assert rec.id == f"1ahsA/{chain}_{number}" and name not in rec.id  # the id does not give the answer away
        assert rec.label == RES_CLASS[name] and RES_CLASSES[rec.label] == one_letter(name)
        (p,) = rec.proteins
        c = rec.extra["center_index"]
        assert p.residue_numbers[c] == number and p.chain_ids[c] == chain and p.sequence[c] == "X"
        centre_atoms = p.atoms.name[p.atoms.residue_index == c]
        assert sorted(centre_atoms) == ["C", "CA", "N", "O"]  # the side chain removed, the backbone kept
        ca = rec.extra["center_atom_index"]
        orig_ca = atoms[(atoms["chain"] == chain) & (atoms["residue"] == number) & (atoms["name"] == "CA")]
        np.testing.assert_allclose(p.atoms.coords[ca], orig_ca[["x", "y", "z"]].to_numpy()[0], atol=1e-5)
        # the environment = every other atom within 10 * sqrt(3) A of the pseudo-CB (brute force, not a KD-tree)
        cb = np.array([row.x, row.y, row.z])
        d = np.linalg.norm(atoms[["x", "y", "z"]].to_numpy() - cb, axis=1)
        side_chain = (atoms["chain"] == chain) & (atoms["residue"] == number) & ~atoms["name"].isin(
            ["N", "CA", "C", "O"])
        assert len(p.atoms) == len(idx) == int(((d <= RES_RADIUS) & ~side_chain).sum())
        assert np.linalg.norm(p.atoms.coords - cb, axis=1).max() <= RES_RADIUS + 1e-4


def test_res_removes_side_chain_present_in_indices_and_skips_bad_environments(tmp_path: Path, frames) -> None:
    item = res_item(frames["1ahsA.pdb"], "1ahsA", PICKS)
    atoms = item["atoms"]
    k = next(i for i, s in enumerate(item["labels"]["subunit"]) if i > 0 and not s.endswith("GLY"))
    chain, number, name = item["labels"]["subunit"][k].split("_")
    side = atoms.index[(atoms["chain"] == chain) & (atoms["residue"] == int(number))
                       & ~atoms["name"].isin(["N", "CA", "C", "O"])].tolist()
    assert side  # a residue with a side chain
    item["subunit_indices"][k] = sorted(item["subunit_indices"][k] + side)  # a writer that forgot to remove it
    bad = item["labels"].copy()
    bad.loc[0, "label"] = (RES_CLASS[bad["subunit"][0].split("_")[2]] + 1) % 20  # label contradicts the name
    item["labels"] = bad
    _write_res(tmp_path, [item], "test", "0\n")
    it = iter(get_task("res").load(tmp_path, "test"))
    with pytest.raises(DatasetError, match=r"data\[0\] A_130: label \d+ \(.\) contradicts the residue name"):
        next(it)
    rest = list(it)  # the other environments still come
    assert len(rest) == 3
    rec = next(r for r in rest if r.id.endswith(f"{chain}_{number}"))
    assert len(rec.proteins[0].atoms) == len(item["subunit_indices"][k]) - len(side)
    assert sorted(rec.proteins[0].atoms.name[rec.proteins[0].atoms.residue_index == rec.extra["center_index"]]) == \
        ["C", "CA", "N", "O"]


def _ppi_item(frames, ion: bool = False) -> tuple[dict, np.ndarray]:
    hb = frames["2hhb.pdb"]
    a, b = _chain(hb, "A").assign(subunit="2hhb_A"), _chain(hb, "B").assign(subunit="2hhb_B")
    if ion:  # a calcium ion of chain A, whose atom name is CA as well
        ca_ion = a.iloc[[0]].assign(hetero="H_ CA", residue=500, resname="CA", name="CA", element="CA")
        a = pd.concat([a, ca_ion], ignore_index=True)
    ca_a, ca_b = a[a["name"] == "CA"], b[b["name"] == "CA"]
    close = np.argwhere(cdist(ca_a[["x", "y", "z"]], ca_b[["x", "y", "z"]]) < 8.0)  # atom3d: CA, cutoff 8
    nb = pd.DataFrame({"ensemble0": "2hhb", "subunit0": "2hhb_A", "structure0": "2hhb", "model0": 0,
                       "chain0": "A", "residue0": ca_a["residue"].to_numpy()[close[:, 0]],
                       "ensemble1": "2hhb", "subunit1": "2hhb_B", "structure1": "2hhb", "model1": 0,
                       "chain1": "B", "residue1": ca_b["residue"].to_numpy()[close[:, 1]], "label": 1})
    return {"atoms_pairs": pd.concat([a, b], ignore_index=True), "atoms_neighbors": nb, "id": "2hhb"}, close


def test_ppi_record_carries_every_neighbour_and_an_epoch0_draw(tmp_path: Path, frames) -> None:
    item, close = _ppi_item(frames)
    assert len(close) > 20  # the alpha1-beta1 interface
    write_atom3d_lmdb(tmp_path / "DIPS-split" / "data" / "test", [item])
    (rec,) = list(get_task("atom3d_ppi").load(tmp_path, "test"))
    pa, pb = rec.proteins
    assert (len(pa), len(pb)) == (141, 146)
    ca = [p.ca for p in rec.proteins]
    dist = cdist(ca[0], ca[1])
    pos = rec.extra["positive_pairs"]
    assert pos.shape == (2, len(close)) and set(map(tuple, pos.T)) == set(map(tuple, np.argwhere(dist < 8.0)))
    pairs, label = rec.extra["pair_index"], rec.label
    assert pairs.shape == (2, 20) and label.tolist() == [1.0] * 10 + [0.0] * 10
    assert ((dist[pairs[0], pairs[1]] < 8.0) == (label == 1)).all()
    expected = sample_ppi_pairs(pos, (141, 146), epoch=0, key="2hhb")
    assert (expected[0] == pairs).all()


def test_ppi_unknown_neighbour_residue_names_the_record(tmp_path: Path, frames) -> None:
    item, _ = _ppi_item(frames, ion=True)
    ion_row = item["atoms_neighbors"].iloc[[0]].assign(residue0=500)
    item["atoms_neighbors"] = pd.concat([item["atoms_neighbors"], ion_row], ignore_index=True)
    write_atom3d_lmdb(tmp_path / "DIPS-split" / "data" / "train", [item, _ppi_item(frames)[0]])
    it = iter(get_task("atom3d_ppi").load(tmp_path, "train"))
    with pytest.raises(DatasetError, match=r"train\[0\] \(2hhb\): neighbour residue A:500 of subunit '2hhb_A' is "
                                           r"not an amino-acid residue") as err:
        next(it)
    assert "\n" not in str(err.value)
    assert next(it).id == "2hhb"  # the next complex still loads


def test_sample_ppi_pairs_rule() -> None:
    rng = np.random.default_rng(0)
    flat = rng.choice(30 * 40, size=25, replace=False)
    pos = np.stack([flat // 40, flat % 40])
    truth = set(map(tuple, pos.T))
    draws = [sample_ppi_pairs(pos, (30, 40), epoch=e, key="c1", seed=3) for e in range(50)]
    for index, label in draws:
        assert index.shape == (2, 20) and index.dtype == np.int64 and label.dtype == np.float32
        got = list(map(tuple, index.T))
        assert len(set(got)) == 20  # without replacement
        assert {g for g, y in zip(got, label) if y == 1} <= truth and label.sum() == 10
        assert not {g for g, y in zip(got, label) if y == 0} & truth
    again = sample_ppi_pairs(pos, (30, 40), epoch=7, key="c1", seed=3)
    assert all((a == b).all() for a, b in zip(again, draws[7]))  # pure: same arguments, same draw
    assert len({tuple(map(tuple, d[0][:, :10].T)) for d in draws}) > 40  # positives change with the epoch
    assert len({tuple(map(tuple, d[0][:, 10:].T)) for d in draws}) == 1  # upstream: random_state=0 negatives
    # every positive is drawn with probability 10/25 per epoch
    counts = pd.Series([p for d in draws for p in map(tuple, d[0][:, :10].T)]).value_counts()
    assert set(counts.index) == truth and counts.max() < 50 and counts.min() > 5
    fresh = [sample_ppi_pairs(pos, (30, 40), epoch=e, key="c1", seed=3, fixed_negatives=False)[0] for e in range(3)]
    assert len({tuple(map(tuple, f[:, 10:].T)) for f in fresh}) == 3
    other = sample_ppi_pairs(pos, (30, 40), epoch=0, key="c2", seed=3)[0]
    assert not (other == draws[0][0]).all()
    few, few_label = sample_ppi_pairs(pos[:, :4], (30, 40), epoch=0, key=0)
    assert few_label.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]  # fewer than 10 positives: all of them, as many negatives
    tiny, tiny_label = sample_ppi_pairs(np.array([[0, 0, 1, 1], [0, 1, 0, 2]]), (2, 3), epoch=0, key=0)
    assert tiny_label.tolist() == [1, 1, 1, 1, 0, 0] and set(map(tuple, tiny[:, 4:].T)) == {(0, 2), (1, 1)}
    with pytest.raises(ValueError, match="outside"):
        sample_ppi_pairs(np.array([[0], [5]]), (2, 3), epoch=0, key=0)
