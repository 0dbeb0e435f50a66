"""ATOM3D tasks (Townshend et al. 2021): LBA (30% / 60% identity splits), PSR, MSP, PPI, RES.

Files: the released split LMDBs, ``<root>/<split dir>/data/{train,val,test}`` (e.g. ``split-by-sequence-identity-30
/data/train``; ``<root>/splits/<split dir>/...`` and ``<root>/data/<split>`` work too), or a raw LMDB plus
``<split>_indices.txt`` (how RES was released). Items are read by :class:`pa_geo.datasets.atom3d.Atom3DLMDB`.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from pa_geo.tasks.registry import register_task
from pa_geo.tasks.spec import TaskRecord, TaskSpec

ATOM3D_SPLITS = ["train", "val", "test"]
ATOM3D_URL = "https://www.atom3d.ai/"


def _loader(task: str, split_dir: str, root: Path, split: str, positives_per_epoch: int | None = None,
            **kwargs) -> list[TaskRecord]:
    # positives_per_epoch: the interface task kind draws the pairs per epoch (pa_geo/tasks/kinds/pairs.py)
    from pa_geo.tasks.atom3d_records import load_atom3d_task  # lazy: heavy imports, datasets -> tasks.spec

    return load_atom3d_task(task, split_dir, root, split, **kwargs)


def _spec(name: str, task: str, split_dir: str, input_kind: str, level: str, label_type: str, num_outputs: int,
          metrics: list[str], description: str, **options) -> TaskSpec:
    return TaskSpec(name=name, input_kind=input_kind, level=level, label_type=label_type, num_outputs=num_outputs,
                    metrics=list(metrics), primary_metric=metrics[0], splits=list(ATOM3D_SPLITS),
                    higher_is_better=metrics[0] not in ("rmse", "mae", "mse"),
                    loader=partial(_loader, task, split_dir, **options), source="ATOM3D", description=description,
                    options=dict(options, atom3d_task=task, split_dir=split_dir))


ATOM3D_TASKS: list[TaskSpec] = [
    _spec("lba_30", "lba", "split-by-sequence-identity-30", "ligand", "graph", "regression", 1,
          ["rmse", "pearson", "spearman", "mae"],
          "ligand binding affinity (neglog_aff), pocket + ligand atoms, 30% sequence-identity split", pocket=True),
    _spec("lba_60", "lba", "split-by-sequence-identity-60", "ligand", "graph", "regression", 1,
          ["rmse", "pearson", "spearman", "mae"],
          "ligand binding affinity (neglog_aff), pocket + ligand atoms, 60% sequence-identity split", pocket=True),
    _spec("psr", "psr", "split-by-year", "structure", "graph", "regression", 1,
          ["per_target_spearman", "spearman", "pearson", "mae"],
          "protein structure ranking: GDT_TS of CASP decoys; per-target (extra['target']) and global Spearman"),
    _spec("msp", "msp", "split-by-sequence-identity-30", "mutation", "graph", "binary", 1, ["auroc", "auprc"],
          "mutation stability: proteins = [original, mutated] complexes, label 1 if the mutation stabilises"),
    _spec("atom3d_ppi", "ppi", "DIPS-split", "pair", "residue_pair", "binary", 1, ["auroc", "auprc"],
          "interface residue pairs: proteins = [subunit 0, subunit 1]; extra['pair_index'] [2, P] residues, "
          "label [P] 1 for CA-CA < 8 A neighbours, sampled non-neighbours 0; per epoch <= 10 neighbour pairs + as many "
          "non-neighbours are drawn (atom3d examples/ppi)", negatives_per_positive=1, positives_per_epoch=10),
    _spec("res", "res", "split-by-cath-topology", "structure", "node", "multiclass", 20, ["accuracy"],
          "residue identity from its environment: label [L] AMINO_ACIDS index on labelled residues "
          "(label_mask); their residue type must be hidden from the inputs"),
]


def register_atom3d_tasks() -> None:
    """Register every ATOM3D task (idempotent); ``lba`` is an alias of ``lba_30``, ``ppi_atom3d`` of ``atom3d_ppi``."""
    for spec in ATOM3D_TASKS:
        aliases = {"lba_30": ("lba",), "atom3d_ppi": ("ppi_atom3d",)}.get(spec.name, ())
        register_task(spec, overwrite=True, aliases=aliases)
