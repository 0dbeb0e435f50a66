"""ATOM3D task items -> labelled PyG graphs (item keys from atom3d's ``prepare_lmdb.py`` scripts).

* LBA: ``atoms_pocket`` (or ``atoms_protein``) + ``atoms_ligand``, ``scores`` with ``neglog_aff`` -> one atom graph
  (ligand atoms flagged ``is_ligand``), ``y`` [1, 1] float32.
* PSR: ``atoms``, ``scores`` with ``gdt_ts``, ``id`` = str((target, decoy)) -> residue graph, ``y`` [1, 1],
  ``target`` / ``decoy`` strings (PSR is scored per target).
* MSP: ``original_atoms``, ``mutated_atoms``, ``label`` '0' / '1', ``id`` like ``1A22_A_B_RA48A`` -> two residue
  graphs, each with ``y`` [1] int64 and ``mutation_mask`` [N] bool on the mutated residue(s).
* RES: ``atoms``, ``labels`` (DataFrame subunit = ``chain_residue_resname``, label = atom3d class index),
  ``subunit_indices`` -> residue graph with ``node_y`` [N] int64 (index into ``AMINO_ACIDS``) and
  ``node_y_mask`` [N]; the labelled residues' ``residue_type`` is set to 20 (X) so the answer is not an input
  (sequence embeddings of those residues must be masked by whoever attaches them).
"""
from __future__ import annotations

import ast
import re
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data

from pa_geo.datasets.atom3d_frames import frame_to_protein
from pa_geo.errors import DatasetError
from pa_geo.graphs import atom_graph, residue_graph
from pa_geo.io.protein import AA_TO_INDEX

# atom3d's RES class order (atom3d/datasets/res/util.py: label_res_dict) -> one-letter code
RES_CLASSES: tuple[str, ...] = ("H", "K", "R", "D", "E", "S", "T", "N", "Q", "A", "V", "L", "I", "M", "F", "Y",
                                "W", "P", "G", "C")
_MUTATION = re.compile(r"^([A-Z])([A-Za-z0-9]{1,4}?)(-?\d+)([A-Z]?)([A-Z])$")
TASKS = ("lba", "psr", "msp", "res")
LIGAND_CHAIN = "__ligand__"  # chain id given to LBA ligand atoms (no PDB chain id is this long)


def detect_task(item: dict) -> str | None:
    """The ATOM3D task an item belongs to from its keys (``lba``, ``psr``, ``msp``, ``res``), None if generic."""
    if "atoms_ligand" in item:
        return "lba"
    if "original_atoms" in item and "mutated_atoms" in item:
        return "msp"
    if "labels" in item and "subunit_indices" in item:
        return "res"
    if "atoms" in item and item.get("scores") is not None:
        return "psr"
    return None


def _score(scores: Any, key: str, where: str) -> float:
    if isinstance(scores, dict) and "index" in scores and "data" in scores and key not in scores:
        scores = dict(zip(scores["index"], scores["data"]))  # a split Series stored without its type string
    try:
        return float(scores[key])
    except (KeyError, TypeError, ValueError, IndexError):
        raise DatasetError(f"{where}: scores has no numeric {key!r}") from None


def item_label(item: dict, task: str | None, where: str = "atom3d") -> Any:
    """The task's label of an item: LBA neglog_aff, PSR gdt_ts, MSP 0/1; None for RES and generic items."""
    where = f"{where}[{item.get('id')}]"
    if task == "lba":
        return _score(item.get("scores"), "neglog_aff", where)
    if task == "psr":
        return _score(item.get("scores"), "gdt_ts", where)
    if task == "msp":
        label = str(item.get("label")).strip()
        if label not in ("0", "1"):
            raise DatasetError(f"{where}: MSP label must be '0' or '1', got {item.get('label')!r}")
        return int(label)
    return None


def _frame(item: dict, key: str, where: str) -> pd.DataFrame:
    df = item.get(key)
    if not isinstance(df, pd.DataFrame):
        raise DatasetError(f"{where}: item has no atoms frame {key!r} (keys: {', '.join(sorted(item))})")
    return df


def lba_graph(item: dict, pocket: bool = True, where: str = "atom3d", **graph_kwargs: Any) -> Data:
    """LBA item -> atom graph of pocket (or full protein) + ligand; ``y`` [1, 1] float32 = neglog_aff.

    ``graph_kwargs`` go to :func:`pa_geo.graphs.atom_graph`.
    """
    w = f"{where}[{item.get('id')}]"
    protein_df = _frame(item, "atoms_pocket" if pocket else "atoms_protein", w)
    ligand_df = _frame(item, "atoms_ligand", w).copy()
    # Ligand rows become one HETATM group in a chain of their own, whatever the SDF reader put there.
    ligand_df["hetero"], ligand_df["chain"], ligand_df["resname"] = "H_LIG", LIGAND_CHAIN, "LIG"
    if "model" in ligand_df and "model" in protein_df and len(protein_df):
        ligand_df["model"] = protein_df["model"].iloc[0]
    both = pd.concat([protein_df, ligand_df], ignore_index=True)
    prot = frame_to_protein(both, str(item.get("id")), source=where)
    g = atom_graph(prot, ligand_mask=prot.atoms.chain_id == LIGAND_CHAIN, **graph_kwargs)
    g.y = torch.tensor([[item_label(item, "lba", where)]], dtype=torch.float32)
    return g


def psr_graph(item: dict, where: str = "atom3d", builder: Callable[..., Data] = residue_graph,
              **graph_kwargs: Any) -> Data:
    """PSR item -> graph (``builder``, default residue graph) with ``y`` [1, 1] = gdt_ts, ``target``, ``decoy``."""
    w = f"{where}[{item.get('id')}]"
    raw_id = item.get("id")
    target, decoy = str(raw_id), ""
    if isinstance(raw_id, (list, tuple)) and len(raw_id) == 2:
        target, decoy = map(str, raw_id)
    elif isinstance(raw_id, str) and raw_id.startswith("("):
        try:
            parsed = ast.literal_eval(raw_id)
            target, decoy = str(parsed[0]), str(parsed[1])
        except (ValueError, SyntaxError, IndexError, TypeError):
            pass
    g = builder(frame_to_protein(_frame(item, "atoms", w), f"{target}/{decoy}" if decoy else target, where),
                **graph_kwargs)
    g.y = torch.tensor([[item_label(item, "psr", where)]], dtype=torch.float32)
    g.target, g.decoy = target, decoy
    return g


def parse_mutation(item_id: str) -> tuple[str, str, int, str, str]:
    """``'1A22_A_B_RA48A'`` -> (wild type 'R', chain 'A', residue number 48, insertion code '', mutant 'A')."""
    code = str(item_id).split("_")[-1]
    m = _MUTATION.match(code)
    if not m:
        raise DatasetError(f"MSP id {item_id!r}: last field {code!r} is not a mutation like RA48A")
    return m.group(1), m.group(2), int(m.group(3)), m.group(4), m.group(5)


def msp_graphs(item: dict, where: str = "atom3d", builder: Callable[..., Data] = residue_graph,
               **graph_kwargs: Any) -> tuple[Data, Data]:
    """MSP item -> (original graph, mutated graph), each with ``y`` [1] int64 and ``mutation_mask`` [N] bool."""
    w = f"{where}[{item.get('id')}]"
    y = torch.tensor([item_label(item, "msp", where)], dtype=torch.long)
    _, chain, number, icode, _ = parse_mutation(str(item.get("id")))
    out = []
    for key in ("original_atoms", "mutated_atoms"):
        prot = frame_to_protein(_frame(item, key, w), f"{item.get('id')}:{key.split('_')[0]}", where)
        mask = (prot.chain_ids == chain) & (prot.residue_numbers == number) & (prot.insertion_codes == icode)
        if not mask.any():
            raise DatasetError(f"{w}: mutated residue {chain}:{number}{icode} not found in {key}")
        g = builder(prot, **graph_kwargs)
        if g.num_nodes != len(prot):
            raise DatasetError(f"{w}: MSP needs a residue-level builder (one node per residue)")
        g.y, g.mutation_mask = y, torch.from_numpy(mask)
        out.append(g)
    return out[0], out[1]


def res_graph(item: dict, where: str = "atom3d", mask_residue_type: bool = True, **graph_kwargs: Any) -> Data:
    """RES item -> residue graph with ``node_y`` [N] int64 (AMINO_ACIDS index) and ``node_y_mask`` [N] bool."""
    w = f"{where}[{item.get('id')}]"
    prot = frame_to_protein(_frame(item, "atoms", w), str(item.get("id")), where)
    labels = item.get("labels")
    if not isinstance(labels, pd.DataFrame) or not {"subunit", "label"} <= set(labels.columns):
        raise DatasetError(f"{w}: RES labels must be a frame with subunit and label columns")
    subunits = item.get("subunit_indices")
    if subunits is None or len(subunits) != len(labels):
        raise DatasetError(f"{w}: subunit_indices has {None if subunits is None else len(subunits)} entries "
                           f"for {len(labels)} labels")
    lookup: dict[tuple[str, int], int] = {}
    for i, (c, n) in enumerate(zip(prot.chain_ids.tolist(), prot.residue_numbers.tolist())):
        lookup.setdefault((c, n), i)  # atom3d names RES subunits chain_residue_resname, ignoring insertion codes
    node_y = np.zeros(len(prot), np.int64)
    node_mask = np.zeros(len(prot), bool)
    for sub, lab in zip(labels["subunit"].astype(str), labels["label"]):
        chain, number = sub.rsplit("_", 2)[0], sub.rsplit("_", 2)[1]
        node = lookup.get((chain, int(number)))
        if node is None or not 0 <= int(lab) < len(RES_CLASSES):
            raise DatasetError(f"{w}: RES label {sub!r}={lab!r} names no residue of the structure")
        node_y[node], node_mask[node] = AA_TO_INDEX[RES_CLASSES[int(lab)]], True
    g = residue_graph(prot, **graph_kwargs)
    g.node_y, g.node_y_mask = torch.from_numpy(node_y), torch.from_numpy(node_mask)
    if mask_residue_type:
        g.residue_type[g.node_y_mask] = 20
    return g


def item_to_graph(item: dict, task: str, where: str = "atom3d", **graph_kwargs: Any) -> Data | tuple[Data, Data]:
    """Dispatch an item to its task adapter (``lba``, ``psr``, ``msp``, ``res``)."""
    adapters = {"lba": lba_graph, "psr": psr_graph, "msp": msp_graphs, "res": res_graph}
    if task not in adapters:
        raise DatasetError(f"{where}: unknown ATOM3D task {task!r} (one of {', '.join(TASKS)})")
    return adapters[task](item, where=where, **graph_kwargs)
