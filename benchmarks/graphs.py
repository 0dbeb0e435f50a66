"""Graph-building throughput: pa_geo's torch-cluster builders vs naive ``torch.cdist`` builders, same run.

Residue graphs: real 300 +- 20 residue StructureDB chains (already parsed), CA radius 10 A (target >= 2000/s).
Atom graphs: ~600-atom real pockets from the ATOM3D legacy LMDB (heme / SAH pockets and 600-atom patches around
residues), radius 4.5 A (target >= 500/s). Prints a table and writes ``benchmarks/results/graphs.json``.

    .venv/bin/python benchmarks/graphs.py [--threads 1] [--cores 2] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from pa_geo.formats.atom3d import Atom3DLMDB
from pa_geo.formats.atom3d_frames import frame_to_protein
from pa_geo.graphs import atom_graph, residue_graph
from pa_geo.graphs.atom import _vocab_index
from pa_geo.graphs.features import backbone_frames, rbf, residue_positions
from pa_geo.graphs.schema import ATOM_NAME_INDEX, ATOM_NAMES, ELEMENT_INDEX, ELEMENTS
from pa_geo.io.protein import AtomTable, Protein, residue_type_indices

ROOT = Path(__file__).resolve().parents[1]

SHARED_NPZ = ROOT / ".." / "shared" / "data" / "structuredb_sample.npz"
LOCAL_NPZ = ROOT / "tests" / "data" / "structuredb_subset.npz"
LEGACY = ROOT / "tests" / "data" / "atom3d" / "legacy_pdb_generic"


def load_chains(max_chains: int = 64) -> list[Protein]:
    """Real 280-320 residue chains as Proteins (backbone N, CA, C, O atoms in the atom table)."""
    d = np.load(SHARED_NPZ if SHARED_NPZ.exists() else LOCAL_NPZ)
    lengths = d["lengths"]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    out = []
    for i in np.flatnonzero((lengths >= 280) & (lengths <= 320))[:max_chains]:
        bb = d["coords"][offsets[i]:offsets[i + 1], :4].astype(np.float32)
        L = len(bb)
        breaks = np.ones(L, bool)
        breaks[1:] = np.linalg.norm(bb[1:, 0] - bb[:-1, 2], axis=-1) > 2.0
        atoms = AtomTable(np.tile(np.array(["N", "C", "C", "O"], object), L),
                          np.tile(np.array(["N", "CA", "C", "O"], object), L), np.full(4 * L, "UNK", object),
                          np.repeat(np.arange(L), 4), bb.reshape(-1, 3).copy(), np.zeros(4 * L, bool),
                          np.full(4 * L, "A", object))
        out.append(Protein(str(d["ids"][i]), str(d["seqs"][i]), np.full(L, "A", object),
                           d["start_resnum"][i] + np.arange(L), np.full(L, "", object), bb, breaks, atoms))
    return out


def load_pockets(target_atoms: int = 600, patches_per_structure: int = 4) -> list[Protein]:
    """~600-atom real pockets: residues nearest each HEM / SAH ligand (plus the ligand), and patches of the
    ``target_atoms`` atoms nearest to residues spread over each structure."""
    ds = Atom3DLMDB(LEGACY)
    rng = np.random.default_rng(0)
    pockets = []
    for i in range(len(ds)):
        df = ds[i]["atoms"]
        df = df[(df["hetero"].str.strip() != "W") & (df["element"] != "H")].reset_index(drop=True)
        xyz = df[["x", "y", "z"]].to_numpy()
        centres = []
        for (chain, res), lig in df[df["resname"].isin(["HEM", "SAH"])].groupby(["chain", "residue"]):
            centres.append(lig[["x", "y", "z"]].to_numpy().mean(0))
        ca = xyz[(df["name"] == "CA").to_numpy()]
        centres += list(ca[rng.choice(len(ca), size=min(patches_per_structure, len(ca)), replace=False)])
        for c in centres:
            near = np.argsort(np.linalg.norm(xyz - c, axis=1))[:target_atoms]
            sub = df.iloc[np.sort(near)]
            pockets.append(frame_to_protein(sub, f"{ds[i]['id']}@{len(pockets)}"))
    return pockets


def naive_residue_graph(p: Protein, radius: float = 10.0, num_rbf: int = 16, max_seq_sep: int = 32) -> Data:
    """Same graph as :func:`residue_graph` (radius + sequential), neighbours from a dense ``torch.cdist``."""
    pos_np, mask_np = residue_positions(p.backbone, p.atoms.residue_index, p.atoms.coords)
    pos, mask = torch.from_numpy(pos_np), torch.from_numpy(mask_np)
    L = len(p)
    chain = torch.from_numpy(p.chain_index)
    adj = (torch.cdist(pos, pos) <= radius) & mask[:, None] & mask[None, :]
    i = torch.arange(L - 1)
    seq = chain[:-1] == chain[1:]
    adj[i[seq], i[seq] + 1] = True
    adj[i[seq] + 1, i[seq]] = True
    adj.fill_diagonal_(False)
    src, dst = adj.nonzero().t()
    diff = pos[dst] - pos[src]
    dist = diff.norm(dim=-1)
    spatial = mask[src] & mask[dst]
    same = chain[src] == chain[dst]
    sep = ((dst - src).clamp(-max_seq_sep, max_seq_sep).float() / max_seq_sep) * same
    unit = diff / dist.clamp_min(1e-6)[:, None] * (spatial & (dist > 1e-6))[:, None]
    frames = backbone_frames(torch.from_numpy(p.backbone))
    direction = torch.bmm(frames[src], unit.unsqueeze(-1)).squeeze(-1)
    edge_attr = torch.cat([rbf(dist, radius, num_rbf) * spatial[:, None], sep[:, None], same.float()[:, None],
                           direction], 1)
    return Data(pos=pos, residue_type=torch.from_numpy(residue_type_indices(p.sequence)),
                edge_index=torch.stack([src, dst]), edge_attr=edge_attr, num_nodes=L)


def naive_atom_graph(p: Protein, radius: float = 4.5, num_rbf: int = 16) -> Data:
    """Atom graph with the same fields, dense ``torch.cdist`` neighbour search and nearest-residue assignment."""
    a = p.atoms
    keep = ~np.isin(a.element.astype(str), ["H", "D"]) & ~np.isin(a.resname.astype(str), ["HOH"])
    element = _vocab_index(a.element[keep], ELEMENT_INDEX, len(ELEMENTS) - 1)
    name_type = _vocab_index(a.name[keep], ATOM_NAME_INDEX, len(ATOM_NAMES) - 1)
    pos = torch.from_numpy(a.coords[keep])
    d = torch.cdist(pos, pos)
    adj = d <= radius
    adj.fill_diagonal_(False)
    src, dst = adj.nonzero().t()
    res = torch.from_numpy(a.residue_index[keep])
    inside = res >= 0
    if (~inside).any() and inside.any():
        res[~inside] = res[inside][d[~inside][:, inside].argmin(1)]
    return Data(pos=pos, edge_index=torch.stack([src, dst]), edge_attr=rbf(d[src, dst], radius, num_rbf),
                atom2residue=res, atom_in_residue=inside, element=torch.from_numpy(element),
                atom_name_type=torch.from_numpy(name_type), is_hetero=torch.from_numpy(a.hetero[keep]),
                num_nodes=len(pos))


def throughput(fn, items, repeats: int) -> tuple[float, float, list[Data]]:
    """Best-of-``repeats`` (wall graphs/s, CPU graphs/s) of ``fn`` over ``items``.

    The CPU rate (graphs per CPU-second of this process) is what one core sustains even while the shared machine
    is loaded; graphs are independent, so 2 worker processes give twice that on 2 cores.
    """
    fn(items[0])  # warm-up (lazy imports, allocator)
    best_wall = best_cpu = 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        graphs = [fn(x) for x in items]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best_wall, best_cpu = max(best_wall, len(items) / wall), max(best_cpu, len(items) / max(cpu, 1e-9))
    return best_wall, best_cpu, graphs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (graphs are small: 1)")
    ap.add_argument("--cores", type=int, default=2, help="cores the projected rate assumes (1 process each)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "graphs.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    chains = load_chains()
    pockets = load_pockets()
    rows = {}
    for name, items, fast, naive, target in [
        ("residue_graph", chains, lambda p: residue_graph(p, radius=10.0), naive_residue_graph, 2000.0),
        ("atom_graph", pockets, lambda p: atom_graph(p, radius=4.5), naive_atom_graph, 500.0),
    ]:
        fast_wall, fast_cpu, graphs = throughput(fast, items, args.repeats)
        naive_wall, naive_cpu, naive_graphs = throughput(naive, items, args.repeats)
        same = all(g.num_edges == h.num_edges for g, h in zip(graphs, naive_graphs))
        projected = fast_cpu * args.cores
        rows[name] = {
            "wall_graphs_per_s_1proc": round(fast_wall, 1), "cpu_graphs_per_s_1core": round(fast_cpu, 1),
            "projected_graphs_per_s": round(projected, 1),
            "naive_wall_graphs_per_s_1proc": round(naive_wall, 1), "naive_cpu_graphs_per_s_1core": round(naive_cpu, 1),
            "speedup_vs_naive_cpu": round(fast_cpu / naive_cpu, 2), "target_graphs_per_s": target,
            "meets_target": projected >= target, "edge_counts_match_naive": same, "num_graphs": len(items),
            "mean_nodes": round(float(np.mean([g.num_nodes for g in graphs])), 1),
            "mean_edges": round(float(np.mean([g.num_edges for g in graphs])), 1),
        }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {"threads": args.threads, "cores": args.cores, "repeats": args.repeats, "torch": torch.__version__,
              "python": platform.python_version(), "cpu_count": os.cpu_count(), "load_avg_1min": load,
              "results": rows}
    print(f"{'builder':<14} {'wall/s':>7} {'cpu/s':>7} {f'x{args.cores} cores':>9} {'naive cpu/s':>11} "
          f"{'speedup':>8} {'target':>7} {'ok':>5} {'nodes':>6} {'edges':>7} {'n':>4}")
    for name, r in rows.items():
        print(f"{name:<14} {r['wall_graphs_per_s_1proc']:>7.0f} {r['cpu_graphs_per_s_1core']:>7.0f} "
              f"{r['projected_graphs_per_s']:>9.0f} {r['naive_cpu_graphs_per_s_1core']:>11.0f} "
              f"{r['speedup_vs_naive_cpu']:>7.2f}x {r['target_graphs_per_s']:>7.0f} {str(r['meets_target']):>5} "
              f"{r['mean_nodes']:>6.0f} {r['mean_edges']:>7.0f} {r['num_graphs']:>4}")
    print(f"(1-min load average {load}: wall rates share the CPU with other processes; cpu/s is per core)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
