"""Every structure backbone's embeddings are the same wherever the chain sits: real chains in their file pose,
centred at the origin and rotated, and rotated and moved +1000 A along every axis.

Tolerances (``TOL``: centred, far), from measurement: max |difference| over layers and residues of the proteins
below, float32 throughout.
- Centred and rotated: ProteinMPNN (full and CA) <= 7e-6; the tiny random ESM-IF1 <= 2.2e-4, because its
  dihedrals come from ``acos``, whose slope near 180 degrees turns float rounding into ~1e-4 (1e-6 A of noise
  on the coordinates moves it as much).
- At +1000 A float32 coordinates are rounded to ~3e-5 A (half the spacing of floats near 1000), which moves every
  backbone's embeddings by <= 3.3e-4.
The tolerances leave a margin of 3-7x above those and stay at or below the fp16 rounding of the embedding cache
(~1e-3 at the embeddings' scale of ~3). What they catch: origin-reading featurisations moved ``proteinmpnn_ca``
embeddings by up to 0.69 when the chain was centred and rotated (chain ends read the origin: 0.2-0.7;
quaternion axes in the global frame alone: ~0.01), and the tiny ESM-IF1's by up to 1.7.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pa_geo.backbones import available_backbones, get_backbone
from pa_geo.backbones._weights import combine_digest
from pa_geo.backbones.base import BACKBONES
from pa_geo.errors import CacheError, ConfigError
from pa_geo.io.protein import Protein
from tests.helpers.esm_models import make_tiny_esm_if1
from tests.helpers.proteins import read_test_structure, structuredb_chains

TOL = {"proteinmpnn": (5e-5, 1e-3), "proteinmpnn_ca": (5e-5, 1e-3), "esm_if1": (1e-3, 1e-3)}
FAR = 1000.0


@pytest.fixture(scope="module")
def backbones(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("esm_if1") / "tiny_if1.pt"
    make_tiny_esm_if1(path)
    return {"proteinmpnn": get_backbone("proteinmpnn", layers="all"),
            "proteinmpnn_ca": get_backbone("proteinmpnn_ca", layers="all"),
            "esm_if1": get_backbone("esm_if1", layers="all", model=str(path))}


def _with(p: Protein, **changes) -> Protein:
    return dataclasses.replace(p, **changes)


def _short_with_gap() -> Protein:
    """47 residues of a real chain with a 5-number skip after residue 20: 49 model rows for the CA model, so its
    48 nearest neighbours are chosen among masked rows tied with the farthest residue."""
    p = structuredb_chains()[1]
    idx = np.arange(47)
    nums = p.residue_numbers[idx] + np.where(idx > 20, 5, 0)
    return Protein(p.id + "_gap", p.sequence[:47], p.chain_ids[idx], nums, p.insertion_codes[idx],
                   p.backbone[idx].copy(), p.chain_breaks[idx], source=p.source)


def _without_ca(p: Protein, at: int) -> Protein:
    bb = p.backbone.copy()
    bb[at, 1] = np.nan
    return _with(p, id=f"{p.id}_noCA{at}", backbone=bb)


PROTEINS = {
    "2hhb_AB (two chains)": lambda: read_test_structure("2hhb.pdb.gz").select_chains(["A", "B"]),
    "3a4rA (numbering gap)": lambda: read_test_structure("backbones_3a4rA_gap.pdb.gz"),
    "1AMT_C (20 residues)": lambda: structuredb_chains()[0],
    "1C1Y_B[:47] (gap, 49 rows)": _short_with_gap,
    "1mr1D (residue 2 lacks C, O)": lambda: read_test_structure("backbones_1mr1D_missing_atoms.pdb.gz"),
    "1A3A_B (residue 30 lacks CA)": lambda: _without_ca(structuredb_chains()[2], 30),
}


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def posed(p: Protein, rotation: np.ndarray, shift: np.ndarray | float, centre: bool) -> Protein:
    """``p`` rotated about its CA centroid (``centre``: and put there at the origin) or about the origin, then
    shifted; computed in float64, stored in float32. Missing atoms stay NaN."""
    bb = p.backbone.astype(np.float64)
    c = np.nanmean(bb[:, 1], 0) if centre else np.zeros(3)
    return _with(p, backbone=((bb - c) @ rotation.T + shift).astype(np.float32))


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_every_registered_structure_backbone_is_covered():
    registered = {n for n in available_backbones() if BACKBONES.get(n).level == "structure" and not n.startswith("_")}
    assert registered == set(TOL)


@pytest.mark.parametrize("protein", list(PROTEINS))
@pytest.mark.parametrize("name", list(TOL))
def test_embeddings_do_not_depend_on_the_pose(backbones, name, protein):
    bb, p = backbones[name], PROTEINS[protein]()
    ref = bb.embed([p])[0]
    centred = bb.embed([posed(p, _rotation(1), 0.0, centre=True)])[0]
    far = bb.embed([posed(p, _rotation(2), FAR, centre=False)])[0]
    assert all(torch.isfinite(t).all() and t.shape[0] == len(p) for t in ref.values())
    assert _max_diff(ref, centred) < TOL[name][0]
    assert _max_diff(ref, far) < TOL[name][1]


@pytest.mark.parametrize("name", ["proteinmpnn", "proteinmpnn_ca"])
def test_missing_atoms_never_reach_a_valid_residue(backbones, name):
    """ProteinMPNN's inputs hold missing atoms as zeros: whatever they hold instead, no unmasked residue's
    embedding changes (bit for bit)."""
    bb = backbones[name]
    # the CA model reads no N / C / O: its rows without coordinates are those without CA and the numbering skips
    names = ["1A3A_B (residue 30 lacks CA)", "3a4rA (numbering gap)"] if bb.ca_only else [
        "1mr1D (residue 2 lacks C, O)", "1A3A_B (residue 30 lacks CA)"]
    for p in (PROTEINS[n]() for n in names):
        X, mask, ridx, chains = bb.featurize([p])
        absent = np.ones((X.shape[1], 4, 3), bool)  # rows between residues, and atoms missing from the file
        absent[bb.rows(p)] = ~np.isfinite(p.backbone)
        missing = torch.from_numpy(absent[:, 1] if bb.ca_only else absent).unsqueeze(0)
        assert missing.any() and (X[missing] == 0).all()
        junk = torch.where(missing, torch.randn(X.shape, generator=torch.Generator().manual_seed(0)) * 50, X)
        with torch.no_grad():
            a, b = bb.encode(X, mask, ridx, chains), bb.encode(junk, mask, ridx, chains)
        valid = mask[0] > 0
        assert not valid.all()
        for sa, sb in zip(a, b):
            assert torch.equal(sa[0, valid], sb[0, valid])


def test_fingerprints_name_the_pose_invariant_featurisations(backbones, tmp_path):
    """Embeddings of the origin-reading featurisations (fingerprint: weights and the old settings only) are never
    served from a cache, and checkpoints trained on them are refused in one line; the full ProteinMPNN model's
    embeddings, and so its fingerprint, are the original's."""
    from pa_geo.cache.runner import embed_proteins
    from pa_geo.cache.store import EmbeddingStore
    from pa_geo.train.checkpoint_meta import check_backbones

    full, ca, if1 = backbones["proteinmpnn"], backbones["proteinmpnn_ca"], backbones["esm_if1"]
    assert full.fingerprint == combine_digest(full._digest, False)
    old = {"proteinmpnn_ca": combine_digest(ca._digest, True), "esm_if1": combine_digest(if1._digest, True, 10)}
    assert ca.fingerprint != old["proteinmpnn_ca"] and if1.fingerprint != old["esm_if1"]
    meta = {"backbones": [{"cache": str(tmp_path / "c"), "backbone": "proteinmpnn_ca", "layers": [3],
                           "id": f"proteinmpnn_ca-{old['proteinmpnn_ca']}"}]}
    with pytest.raises(ConfigError, match="proteinmpnn_ca") as err:
        check_backbones(meta, tmp_path / "model.ckpt", "cpu")
    assert "\n" not in str(err.value)
    with EmbeddingStore.for_backbone(tmp_path / "cache", "proteinmpnn_ca", readonly=False) as store:
        store.register("proteinmpnn_ca", f"proteinmpnn_ca-{old['proteinmpnn_ca']}", "structure", {3: 128})
    with pytest.raises(CacheError, match="holds embeddings of"):
        embed_proteins(ca, structuredb_chains()[:1], tmp_path / "cache", progress=False)
