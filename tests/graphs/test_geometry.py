"""Per-residue CA geometry (``geom``), the CA-trace frame and the trees' feature table, on real chains."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pa_geo.graphs import EDGE_ATTR_LAYOUT, GEOM_DIM, GEOM_LAYOUT, ca_frames, ca_geometry_table, residue_graph
from pa_geo.graphs.geometry import backbone_dihedrals, residue_geometry
from pa_geo.io.protein import Protein

pytest.importorskip("torch_cluster")
REPO = Path(__file__).resolve().parents[2]
DIR = EDGE_ATTR_LAYOUT["direction"]


def _moved(p: Protein, rot: np.ndarray, shift: np.ndarray) -> Protein:
    """``p`` rotated by ``rot`` [3, 3] and translated by ``shift`` [3] (backbone and atom table)."""
    bb = (p.backbone.astype(np.float64) @ rot.T + shift).astype(np.float32)
    atoms = p.atoms
    moved = type(atoms)(atoms.element, atoms.name, atoms.resname, atoms.residue_index,
                        (atoms.coords.astype(np.float64) @ rot.T + shift).astype(np.float32), atoms.hetero,
                        atoms.chain_id)
    return Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb, p.chain_breaks, moved,
                   source=p.source)


def _ca_only(p: Protein) -> Protein:
    bb = np.full_like(p.backbone, np.nan)
    bb[:, 1] = p.backbone[:, 1]
    keep = np.flatnonzero(p.atoms.name == "CA")
    a = p.atoms
    atoms = type(a)(a.element[keep], a.name[keep], a.resname[keep], a.residue_index[keep], a.coords[keep],
                    a.hetero[keep], a.chain_id[keep])
    return Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb, p.chain_breaks, atoms,
                   source=p.source)


def _centred(p: Protein) -> np.ndarray:
    return -np.nanmean(p.backbone[:, 1].astype(np.float64), axis=0)


@pytest.mark.parametrize("ca_only", [False, True], ids=["backbone", "ca_trace"])
def test_geometry_and_directions_are_invariant_to_pose(sdb_proteins, ca_only):
    """geom, the trees' table and the edge directions do not change when the chain is rotated and moved, whether
    it is centred at the origin or 1,000 A away."""
    p = sdb_proteins[4]
    p = _ca_only(p) if ca_only else p
    ref = residue_graph(p)
    table, _ = ca_geometry_table(ref.backbone.numpy(), ref.pos.numpy(), ref.pos_mask.numpy(),
                                 ref.chain_index.numpy())
    rot = Rotation.random(random_state=3).as_matrix()
    for shift in (_centred(p) @ rot.T, np.array([1000.0, -700.0, 400.0])):
        g = residue_graph(_moved(p, rot, shift))
        assert torch.equal(g.edge_index, ref.edge_index)
        assert torch.allclose(g.geom, ref.geom, atol=2e-3)
        assert torch.allclose(g.edge_attr[:, DIR], ref.edge_attr[:, DIR], atol=2e-3)
        moved_table, _ = ca_geometry_table(g.backbone.numpy(), g.pos.numpy(), g.pos_mask.numpy(),
                                           g.chain_index.numpy())
        assert np.array_equal(np.isnan(moved_table), np.isnan(table))
        np.testing.assert_allclose(np.nan_to_num(moved_table), np.nan_to_num(table), atol=3e-3)


def test_ca_trace_gets_real_frames_and_directions(sdb_proteins):
    """On a CA trace every edge between positioned residues has a unit direction (the CA-trace frame), and the
    frame of an interior residue is the N-CA-C construction with CA(i-1) / CA(i+1) in place of N / C."""
    p = _ca_only(sdb_proteins[5])
    g = residue_graph(p)
    norms = g.edge_attr[:, DIR].norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
    frames = ca_frames(g.pos.numpy(), g.pos_mask.numpy(), g.chain_index.numpy())
    ca = g.pos.numpy().astype(np.float64)
    i = 10
    e1 = (ca[i + 1] - ca[i]) / np.linalg.norm(ca[i + 1] - ca[i])
    v = ca[i - 1] - ca[i]
    e2 = v - (v @ e1) * e1
    np.testing.assert_allclose(frames[i, 0], e1, atol=1e-5)
    np.testing.assert_allclose(frames[i, 1], e2 / np.linalg.norm(e2), atol=1e-5)
    np.testing.assert_allclose(frames[i] @ frames[i].T, np.eye(3), atol=1e-5)
    # chain ends take the frame of their nearest framed neighbour
    np.testing.assert_array_equal(frames[0], frames[1])
    np.testing.assert_array_equal(frames[-1], frames[-2])


def test_helix_and_strand_have_their_textbook_ca_geometry():
    """On the shipped StructureDB chains, residues DSSP calls H have CA virtual bond angles near 91 degrees and
    virtual dihedrals near +50 degrees; E residues near 120 and -155 to -170 degrees (Levitt 1976; Oldfield & Hubbard 1994)."""
    d = np.load(REPO / "data" / "structuredb_subset.npz")
    offsets = np.concatenate([[0], np.cumsum(d["lengths"])])
    angle, dihed, ss = [], [], []
    for i in range(40):
        ca = d["coords"][offsets[i]:offsets[i + 1], 1].astype(np.float32)
        L = len(ca)
        geom = residue_geometry(np.full((L, 4, 3), np.nan, np.float32), ca, np.ones(L, bool), np.zeros(L, np.int64))
        cs = geom[:, GEOM_LAYOUT["angle"]][:, 6:8]  # the angle at CA(i) (angles at CA(i-3) .. CA(i+3))
        angle.append(np.degrees(np.arctan2(cs[:, 1], cs[:, 0])))
        cs = geom[:, GEOM_LAYOUT["dihedral"]][:, 6:8]  # CA(i-1), CA(i), CA(i+1), CA(i+2)
        dihed.append(np.degrees(np.arctan2(cs[:, 1], cs[:, 0])))
        ss.append(np.array(list(str(d["dssp"][i]))))
    angle, dihed, ss = np.concatenate(angle), np.concatenate(dihed), np.concatenate(ss)
    helix = (ss == "H")
    helix[1:-2] &= (ss[:-3] == "H") & (ss[2:-1] == "H") & (ss[3:] == "H")
    strand = ss == "E"
    assert helix.sum() > 500 and strand.sum() > 300
    assert abs(np.median(angle[helix]) - 91) < 4 and abs(np.median(dihed[helix]) - 50) < 6
    assert abs(np.median(angle[strand]) - 120) < 8
    assert np.median(np.abs(dihed[strand])) > 145


def test_backbone_dihedrals_match_biotite():
    """phi / psi / omega of a real PDB chain agree with biotite's ``dihedral_backbone`` (an independent
    implementation) wherever both are defined."""
    import gzip
    import io

    import biotite.structure as struc
    from biotite.structure.io.pdb import PDBFile

    from pa_geo.io import read_structure

    path = REPO / "tests" / "data" / "2cviA.pdb.gz"
    p = read_structure(path)
    ours = backbone_dihedrals(p.backbone, p.chain_index)
    atoms = PDBFile.read(io.StringIO(gzip.open(path, "rt").read())).get_structure(model=1)
    atoms = atoms[struc.filter_amino_acids(atoms) & ~atoms.hetero]
    phi, psi, omega = struc.dihedral_backbone(atoms)
    ref = np.stack([phi, psi, omega], -1)
    assert ref.shape == ours.shape
    both = np.isfinite(ref) & np.isfinite(ours)
    assert both.mean() > 0.95
    diff = np.angle(np.exp(1j * (ours[both] - ref[both])))
    assert np.abs(diff).max() < 1e-3


def test_features_never_cross_a_chain_boundary_and_count_by_brute_force():
    """Window features of chain A do not see chain B; counts and nearest non-local distances match brute force."""
    from pa_geo.io import read_structure

    p = read_structure(REPO / "tests" / "data" / "2hhb.pdb.gz")
    g = residue_graph(p)
    chain = g.chain_index.numpy()
    last_a = int(np.flatnonzero(chain == 0)[-1])
    geom = g.geom.numpy()
    present = geom[:, GEOM_LAYOUT["ca_present"]]
    assert present[last_a, 4:].sum() == 0 and present[last_a + 1, :4].sum() == 0  # offsets +1..+4 / -4..-1
    ca = g.pos.numpy().astype(np.float64)
    dist = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    counts = (dist[:, :, None] <= np.array([6.0, 8.0, 10.0, 12.0])).sum(1) - 1
    np.testing.assert_allclose(geom[:, GEOM_LAYOUT["counts"]] * 20, counts, atol=1e-4)
    idx = np.arange(len(ca))
    far = (chain[:, None] != chain[None]) | (np.abs(idx[:, None] - idx[None]) > 3)
    nearest = np.sort(np.where(far, dist, np.inf), axis=1)[:, :3]
    np.testing.assert_allclose(geom[:, GEOM_LAYOUT["nonlocal"]] * 10, np.minimum(nearest, 20.0), atol=1e-4)


def test_undefined_features_are_masked_not_silent_zeros(sdb_proteins):
    """Chain ends carry presence masks of 0 where their window leaves the chain; a CA trace has no phi / psi (mask
    0) and a full backbone has them; a sequence-only protein has an all-zero geom of the same width."""
    p = sdb_proteins[0]
    full, trace = residue_graph(p).geom, residue_graph(_ca_only(p)).geom
    assert full.shape == (len(p), GEOM_DIM)
    present = full[:, GEOM_LAYOUT["ca_present"]]
    assert present[0, :4].sum() == 0 and present[0, 4:].sum() == 4 and present[10].sum() == 8
    assert full[1:-1, GEOM_LAYOUT["backbone_present"]][:, :2].all()
    assert trace[:, GEOM_LAYOUT["backbone_present"]].sum() == 0 and trace[:, GEOM_LAYOUT["backbone"]].abs().sum() == 0
    # everything else is computed from CA alone
    same = [k for k in GEOM_LAYOUT if not k.startswith("backbone")]
    for key in same:
        assert torch.allclose(full[:, GEOM_LAYOUT[key]], trace[:, GEOM_LAYOUT[key]]), key
    seq_only = residue_graph(Protein.from_sequence("s", p.sequence))
    assert seq_only.geom.shape == (len(p), GEOM_DIM) and seq_only.geom.abs().sum() == 0


def test_table_columns_and_nan_where_undefined(sdb_proteins):
    p = _ca_only(sdb_proteins[1])
    g = residue_graph(p)
    table, names = ca_geometry_table(g.backbone.numpy(), g.pos.numpy(), g.pos_mask.numpy(), g.chain_index.numpy())
    assert table.shape == (len(p), len(names)) and len(set(names)) == len(names)
    col = {n: i for i, n in enumerate(names)}
    assert np.isnan(table[0, col["d[-4,-3]"]]) and np.isfinite(table[4, col["d[-4,-3]"]])
    assert np.isnan(table[:, col["cos_phi"]]).all()  # CA trace
    np.testing.assert_allclose(table[5, col["d[+0,+1]"]], np.linalg.norm(p.backbone[6, 1] - p.backbone[5, 1]),
                               rtol=1e-5)


def test_geom_holds_every_value_of_the_table(sdb_proteins):
    """A model given ``geom`` sees what the trees see: each table value is recoverable from geom."""
    from pa_geo.graphs.geometry import TABLE_LAYOUT

    g = residue_graph(_ca_only(sdb_proteins[2]))
    table, _ = ca_geometry_table(g.backbone.numpy(), g.pos.numpy(), g.pos_mask.numpy(), g.chain_index.numpy())
    geom = g.geom.numpy()
    window = table[:, TABLE_LAYOUT["window_dist"]]
    np.testing.assert_allclose(geom[:, GEOM_LAYOUT["window_dist"]] * 10, np.nan_to_num(window), atol=1e-4)
    angles = table[:, TABLE_LAYOUT["angle"]]
    cs = geom[:, GEOM_LAYOUT["angle"]].reshape(len(g.pos), -1, 2)
    ok = np.isfinite(angles)
    np.testing.assert_allclose(np.arctan2(cs[..., 1], cs[..., 0])[ok], angles[ok], atol=1e-4)
    np.testing.assert_array_equal(geom[:, GEOM_LAYOUT["angle_present"]][:, :7], ok)
    counts = table[:, TABLE_LAYOUT["counts"]]
    np.testing.assert_allclose(geom[:, GEOM_LAYOUT["counts"]] * 20, counts, atol=1e-4)
