"""Forward + backward time of the structure-encoder baselines vs the demo's adapter, on the same residue batch.

    .venv/bin/python benchmarks/structure_encoders_step.py                 # table + benchmarks/results/structure_encoders_step.json
    .venv/bin/python benchmarks/structure_encoders_step.py --only adapter gearnet --repeats 5

Batch: 8 real StructureDB chains of ``data/structuredb_subset.npz`` (the first 8 with >= 300 residues, cropped to
300) as the demo's residue graphs (``residue_graph(radius=10)``), with random frozen fields of the demo's widths
(``emb_near_8`` 256, ``emb_proteinmpnn_3`` 128). One step = forward in train mode, ``loss = mean(node^2) +
mean(graph^2)``, backward (no optimiser). Reported: median wall and process CPU time of ``--repeats`` steps after one
warm-up step (models timed round-robin, so load on a shared machine hits all alike), with ``--threads`` intra-op
threads, and the ratios to the adapter of the same run (the demo's encoder:
``ProteinAdapter(levels, d_model=64)`` + ``MultiScalePredictor(64, hidden_dim=64, num_scales=3)``, the geometric
attention bias off as by default; ``adapter_geometric_bias`` is the same with it). GearNet rows: the defaults
(sequential relations -4..4, CA angle features), with the paper's full edge message passing (``edge_mp``) or its
reduced form over the sequential edges (``edge_mp_sequential``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LEVELS = {"emb_near_8": 256, "emb_proteinmpnn_3": 128}
SEQUENCE_LEVEL = {"emb_near_8": 256}


def _builders() -> dict:
    from pa_geo.nn import AdapterEncoder, MultiScalePredictor, ProteinAdapter
    from pa_geo.nn.structure_encoders import GearNetEncoder, GVPEncoder

    return {
        "adapter": lambda: AdapterEncoder(ProteinAdapter(LEVELS, d_model=64),
                                          MultiScalePredictor(64, hidden_dim=64, num_scales=3)),
        "adapter_geometric_bias": lambda: AdapterEncoder(ProteinAdapter(LEVELS, d_model=64, geometric_bias=True),
                                                         MultiScalePredictor(64, hidden_dim=64, num_scales=3)),
        "gearnet": lambda: GearNetEncoder(),
        "gearnet_edge_mp": lambda: GearNetEncoder(edge_message_passing=True),
        "gearnet_edge_mp_64x4": lambda: GearNetEncoder(hidden_dim=64, num_layers=4, edge_message_passing=True),
        "gearnet_edge_mp_sequential": lambda: GearNetEncoder(edge_message_passing="sequential"),
        "esm_gearnet": lambda: GearNetEncoder(sequence_levels=SEQUENCE_LEVEL),
        "esm_gearnet_edge_mp_64x4": lambda: GearNetEncoder(hidden_dim=64, num_layers=4, edge_message_passing=True,
                                                           sequence_levels=SEQUENCE_LEVEL),
        "esm_gearnet_edge_mp_sequential": lambda: GearNetEncoder(edge_message_passing="sequential",
                                                                 sequence_levels=SEQUENCE_LEVEL),
        "gvp": lambda: GVPEncoder(),
        "gvp_seq": lambda: GVPEncoder(sequence_levels=SEQUENCE_LEVEL),
        "gvp_64x8_k16": lambda: GVPEncoder(node_scalars=64, node_vectors=8, knn_k=16),
        "gvp_64x8_k30": lambda: GVPEncoder(node_scalars=64, node_vectors=8, knn_k=30),
        "gvp_paper_100x16_k30": lambda: GVPEncoder(node_scalars=100, node_vectors=16, knn_k=30),
    }


def demo_batch(num: int = 8, length: int = 300, seed: int = 0):
    """``num`` real chains cropped to ``length`` residues, as residue graphs with random demo-width fields."""
    from torch_geometric.data import Batch

    from pa_geo.graphs import residue_graph
    from pa_geo.io.protein import Protein

    d = np.load(ROOT / "data" / "structuredb_subset.npz")
    offsets = np.concatenate([[0], np.cumsum(d["lengths"])])
    picked = [i for i in range(len(d["lengths"])) if d["lengths"][i] >= length][:num]
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in picked:
        bb = d["coords"][offsets[i]:offsets[i] + length, :4].astype(np.float32)
        breaks = np.zeros(length, bool)
        breaks[0] = True
        p = Protein(str(d["ids"][i]), str(d["seqs"][i])[:length], np.full(length, "A", dtype=object),
                    np.arange(length) + 1, np.full(length, "", dtype=object), bb, breaks)
        g = residue_graph(p, radius=10.0)
        for name, dim in LEVELS.items():
            g[name] = torch.randn(length, dim, generator=gen)
        graphs.append(g)
    return Batch.from_data_list(graphs)


def time_step(model: torch.nn.Module, batch) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one forward + backward step in train mode."""
    model.train()
    model.zero_grad(set_to_none=True)
    wall, cpu = time.perf_counter(), time.process_time()
    out = model(batch)
    (out.node.square().mean() + out.graph.square().mean()).backward()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="model names (the adapter always runs as the baseline)")
    parser.add_argument("--out", type=Path, default=RESULTS / "structure_encoders_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    builders = _builders()
    names = ["adapter"] + [n for n in (args.only or builders) if n != "adapter"]
    batch = demo_batch()
    models = {name: builders[name]() for name in names}
    for model in models.values():  # warm-up
        time_step(model, batch)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):  # round robin: load changes on a shared machine hit every model alike
        for name, model in models.items():
            w, c = time_step(model, batch)
            wall[name].append(w)
            cpu[name].append(c)
    rows = [{"model": name, "median_s": statistics.median(wall[name]), "times_s": wall[name],
             "median_cpu_s": statistics.median(cpu[name]), "params": sum(p.numel() for p in model.parameters()),
             "node_dim": model.node_dim, "graph_dim": model.graph_dim} for name, model in models.items()]
    base, base_cpu = rows[0]["median_s"], rows[0]["median_cpu_s"]
    print(f"forward+backward, batch of {batch.num_graphs} x 300 residues ({batch.num_nodes} nodes), "
          f"{args.threads} threads, median of {args.repeats}")
    print(f"{'model':28s} {'wall s':>8s} {'x adapter':>9s} {'cpu s':>8s} {'x adapter':>9s} {'params':>9s} "
          f"{'node_dim':>8s}")
    for row in rows:
        row["ratio_to_adapter"] = row["median_s"] / base
        row["cpu_ratio_to_adapter"] = row["median_cpu_s"] / base_cpu
        print(f"{row['model']:28s} {row['median_s']:8.3f} {row['ratio_to_adapter']:9.2f} {row['median_cpu_s']:8.3f} "
              f"{row['cpu_ratio_to_adapter']:9.2f} {row['params']:9d} {row['node_dim']:8d}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"threads": args.threads, "repeats": args.repeats, "num_nodes": batch.num_nodes,
                               "rows": rows}, indent=2))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
