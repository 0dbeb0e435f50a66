"""ATOM3D tasks (Townshend et al. 2021): LBA (30% / 60% identity splits), PSR, MSP, PPI, RES.

Files: the released split LMDBs, ``<root>/<split dir>/data/{train,val,test}`` (e.g. ``split-by-sequence-identity-30
/data/train``; ``<root>/splits/<split dir>/...`` and ``<root>/data/<split>`` work too), or a raw LMDB plus
``<split>_indices.txt`` (how RES was released). Records are streamed by
:func:`pa_geo.formats.atom3d_loader.load_atom3d_task` (item parsing: ``pa_geo/formats/atom3d_tasks.py``,
``atom3d_res.py``, ``atom3d_ppi.py``).
"""
from __future__ import annotations

from functools import partial

from pa_geo.formats.atom3d_loader import load_atom3d_task
from pa_geo.tasks.spec import TaskSpec

ATOM3D_SPLITS = ["train", "val", "test"]
_REGRESSION = ["rmse", "pearson", "spearman", "mae"]


def _spec(name: str, task: str, split_dir: str, input_kind: str, level: str, label_type: str, num_outputs: int,
          metrics: list[str], description: str, loader_options: dict | None = None, **options) -> TaskSpec:
    loader_options = dict(loader_options or {})
    return TaskSpec(name=name, input_kind=input_kind, level=level, label_type=label_type, num_outputs=num_outputs,
                    metrics=list(metrics), primary_metric=metrics[0], splits=list(ATOM3D_SPLITS),
                    loader=partial(load_atom3d_task, task, split_dir, **loader_options), source="ATOM3D",
                    description=description,
                    options=dict(options, **loader_options, atom3d_task=task, split_dir=split_dir, has_structures=True))


ATOM3D_TASKS: list[TaskSpec] = [
    _spec("lba_30", "lba", "split-by-sequence-identity-30", "ligand", "graph", "regression", 1, _REGRESSION,
          "ligand binding affinity (neglog_aff), pocket + ligand atoms, 30% sequence-identity split",
          loader_options={"pocket": True}),
    _spec("lba_60", "lba", "split-by-sequence-identity-60", "ligand", "graph", "regression", 1, _REGRESSION,
          "ligand binding affinity (neglog_aff), pocket + ligand atoms, 60% sequence-identity split",
          loader_options={"pocket": True}),
    _spec("psr", "psr", "split-by-year", "structure", "graph", "regression", 1,
          ["per_target_spearman", "spearman", "pearson", "mae"],
          "protein structure ranking: GDT_TS of CASP decoys; per-target (extra['target']) and global Spearman"),
    _spec("msp", "msp", "split-by-sequence-identity-30", "mutation", "graph", "binary", 1, ["auroc", "auprc"],
          "mutation stability: proteins = [original, mutated] complexes, label 1 if the mutation stabilises"),
    _spec("atom3d_ppi", "ppi", "DIPS-split", "pair", "residue_pair", "binary", 1, ["auroc", "auprc"],
          "interface residue pairs (CA-CA < 8 A): proteins = [subunit 0, subunit 1]; extra['positive_pairs'] "
          "[2, P] every neighbour pair; per epoch <= 10 positives + as many non-neighbour pairs "
          "(pa_geo.formats.atom3d_ppi.sample_ppi_pairs; extra['pair_index'] / label = its epoch-0 draw)",
          positives_per_epoch=10, negatives_per_positive=1),
    _spec("res", "res", "split-by-cath-topology", "structure", "graph", "multiclass", 20, ["accuracy"],
          "residue identity from its environment: one example per labelled residue, the atoms within "
          "10*sqrt(3) A of its pseudo-CB with its side chain removed; label = ATOM3D class (RES_CLASSES order); "
          "central residue marked by extra['center_atom_index'] (its CA, atom3d's ca_idx) / "
          "extra['center_index'], renamed UNK so its type is not an input",
          graph="atom", center_key="center_atom_index",
          backbone_levels=("structure",)),  # a sequence model would read the hidden central residue's type
]
# other names the CLI and get_task accept
ATOM3D_ALIASES: dict[str, tuple[str, ...]] = {"lba_30": ("lba",), "atom3d_ppi": ("ppi_atom3d",)}
