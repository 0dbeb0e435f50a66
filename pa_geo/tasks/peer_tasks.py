"""The 17 PEER tasks (Xu et al. 2022), with TorchDrug's split names and PEER's evaluation metrics.

The first metric of each list is the one pa_geo selects models on (``primary_metric``). Files: ``docs/tasks.md``.
Every PEER input is a sequence (pairs and ligand tasks too: the proteins have no coordinates).
Protocol points checked against upstream (``DeepGraphLearning/PEER_Benchmark`` ``config/single_task/*``,
``script/run_single.py``; ``DeepGraphLearning/torchdrug`` ``torchdrug/datasets``, ``torchdrug/tasks``):

* The first test split is the one PEER's configs evaluate (``test_split``): ``cb513`` for secondary structure,
  ``test_fold_holdout`` for fold, ``holdout_test`` for BindingDB (TorchDrug's ``BindingDB.splits`` lists
  ``train, valid, random_test, holdout_test``; PEER's ``bindingdb_*.yaml`` test on ``holdout_test``).
* AAV keeps only the mutated region: every PEER AAV config sets ``keep_mutation_region: True`` and PEER's
  ``peer/flip.py`` ``AAV.region = slice(474, 674)`` (0-based, end exclusive: residues 475..674, 200 residues).
* Secondary structure also reports ``macro_acc`` (PEER's ``ss_*.yaml`` metrics ``micro_acc, macro_acc``; PEER
  selects models on ``macro_acc``); contact also reports ``peer_contact_precision_at_l5`` (TorchDrug's ``prec@L5``
  counting, see :mod:`pa_geo.tasks.custom_metrics`).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from pa_geo.datasets.records import TaskRecord
from pa_geo.formats.peer import load_peer_lmdb
from pa_geo.formats.peer_flip import load_flip
from pa_geo.tasks.spec import TaskSpec

TRAIN_VALID_TEST = ["train", "valid", "test"]
_REGRESSION = ["spearman", "pearson", "mae", "rmse"]
_AFFINITY = ["rmse", "mae", "pearson", "spearman"]


def _lmdb_loader(task: str, root: Path, split: str) -> list[TaskRecord]:
    return load_peer_lmdb(task, root, split)


def _flip_loader(task: str, root: Path, split: str, flip_split: str | None = None,
                 keep_mutation_region: bool = False) -> list[TaskRecord]:
    return load_flip(task, root, split, flip_split, keep_mutation_region=keep_mutation_region)


def _spec(name: str, input_kind: str, level: str, label_type: str, num_outputs: int, metrics: list[str],
          splits: list[str] = TRAIN_VALID_TEST, flip_split: str | None = None, description: str = "",
          keep_mutation_region: bool = False, **options) -> TaskSpec:
    flip = {"flip_split": flip_split, "keep_mutation_region": keep_mutation_region} if flip_split else {}
    loader = partial(_flip_loader, name, **flip) if flip_split else partial(_lmdb_loader, name)
    return TaskSpec(name=name, input_kind=input_kind, level=level, label_type=label_type, num_outputs=num_outputs,
                    metrics=list(metrics), primary_metric=metrics[0], splits=list(splits), loader=loader,
                    source="PEER", description=description, options=dict(options, has_structures=False, **flip))


PEER_TASKS: list[TaskSpec] = [
    # function prediction
    _spec("fluorescence", "sequence", "graph", "regression", 1, _REGRESSION,
          description="GFP mutant log-fluorescence (TAPE)"),
    _spec("stability", "sequence", "graph", "regression", 1, _REGRESSION,
          description="designed-protein stability score (TAPE)"),
    _spec("beta_lactamase", "sequence", "graph", "regression", 1, _REGRESSION,
          description="TEM-1 beta-lactamase mutant activity (scaled_effect1)"),
    _spec("aav", "sequence", "graph", "regression", 1, _REGRESSION, flip_split="two_vs_many",
          keep_mutation_region=True,
          description="AAV capsid fitness (FLIP two_vs_many), VP1 cropped to PEER's mutated region [474:674]"),
    _spec("thermostability", "sequence", "graph", "regression", 1, _REGRESSION, flip_split="human_cell",
          description="Meltome melting temperature (FLIP human_cell)"),
    _spec("gb1", "sequence", "graph", "regression", 1, _REGRESSION, flip_split="two_vs_rest",
          description="GB1 mutant binding fitness (FLIP two_vs_rest)"),
    _spec("solubility", "sequence", "graph", "binary", 1, ["accuracy", "auroc"],
          description="soluble (1) or not (0), DeepSol data"),
    # localization
    _spec("subcellular_localization", "sequence", "graph", "multiclass", 10, ["accuracy", "f1_macro"],
          description="10 subcellular locations (DeepLoc)"),
    _spec("binary_localization", "sequence", "graph", "binary", 1, ["accuracy", "auroc"],
          description="membrane-bound or soluble (DeepLoc), label as released"),
    # structure
    _spec("fold", "sequence", "graph", "multiclass", 1195, ["accuracy", "top5_accuracy"],
          splits=["train", "valid", "test_fold_holdout", "test_family_holdout", "test_superfamily_holdout"],
          description="SCOP fold class, 1195 folds (TAPE remote homology)"),
    _spec("secondary_structure", "sequence", "node", "multiclass", 3, ["accuracy", "macro_acc", "accuracy_macro"],
          splits=["train", "valid", "cb513", "ts115", "casp12"],
          description="3-state secondary structure per residue (0 helix, 1 strand, 2 coil), valid_mask"),
    _spec("contact", "sequence", "residue_pair", "binary", 1,
          ["contact_precision_at_l5", "peer_contact_precision_at_l5", "contact_precision_at_l2",
           "contact_precision_at_l"],
          description="residue contacts: coordinates in 'tertiary' closer than 8 A, |i-j| >= 6 (ProteinNet)",
          min_separation=6, threshold=8.0),
    # protein-protein interaction
    _spec("yeast_ppi", "pair", "graph", "binary", 1, ["accuracy", "auroc"],
          splits=["train", "valid", "test", "cross_species_test"], description="yeast protein pairs interact?"),
    _spec("human_ppi", "pair", "graph", "binary", 1, ["accuracy", "auroc"],
          splits=["train", "valid", "test", "cross_species_test"], description="human protein pairs interact?"),
    _spec("ppi_affinity", "pair", "graph", "regression", 1, _AFFINITY,
          description="protein-protein binding affinity pKd (SKEMPI)"),
    # protein-ligand interaction
    _spec("pdbbind", "ligand", "graph", "regression", 1, _AFFINITY,
          description="PDBbind-2019 protein-ligand affinity; ligand SMILES in extra['smiles']"),
    _spec("bindingdb", "ligand", "graph", "regression", 1, _AFFINITY,
          splits=["train", "valid", "holdout_test", "random_test"],
          description="BindingDB Kd affinity; ligand SMILES in extra['smiles']"),
]
