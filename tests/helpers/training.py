"""Shared pieces of the training tests: real StructureDB tasks (``ttest_ss3``, ``ttest_rsa``, ``ttest_helix``), a
one-hot cache, YAML configs for the CLI. Task registration happens at import, so subprocesses importing this module
(CLI / DDP runs) see the same registry."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from pytorch_lightning.callbacks import Callback

import pa_geo.backbones  # noqa: F401 - registers the onehot backbone
from pa_geo.backbones.base import Backbone, get_backbone
from tests.helpers import REPO
from pa_geo.tasks import register_task
from pa_geo.tasks.spec import TaskRecord, TaskSpec

# The test box runs many jobs on 2 cores: one intra-op thread avoids oversubscription (10x slower graph building).
torch.set_num_threads(1)

DATA_ROOT = REPO / "data"  # the shipped structuredb_subset.npz (real PDB chains with DSSP and SASA)
SPLITS = {"train": range(0, 16), "valid": range(16, 22), "test": range(22, 28), "test_b": range(28, 32)}

BACKBONE = "onehot"


def backbone() -> Backbone:
    """The one-hot backbone (layer 0)."""
    return get_backbone(BACKBONE, layers=[0])


EMB_DIM = backbone().dims[0]
FIELD = "emb_onehot_0"


@functools.lru_cache(maxsize=None)
def _structuredb(root: str) -> list:
    """The first 32 chains of <= 90 residues (short chains keep graph building and training fast)."""
    from pa_geo.formats.structuredb import load_structuredb

    records = load_structuredb(Path(root) / "structuredb_subset.npz", max_chains=240)
    return [r for r in records if len(r.protein) <= 90][:32]


def _records(kind: str, root: Path, split: str) -> list[TaskRecord]:
    out = []
    for i in SPLITS[split]:
        r = _structuredb(str(root))[i]
        if kind == "ss3":
            label = r.ss3
        elif kind == "rsa":
            label = r.rsa.astype(np.float32)
        else:  # graph level: fraction of helix residues (from the real DSSP string)
            label = float(np.mean(r.ss3 == 0))
        out.append(TaskRecord(r.protein.id, [r.protein], label))
    return out


def _register() -> None:
    base = dict(input_kind="structure", splits=list(SPLITS), source="data/structuredb_subset.npz")
    specs = [
        TaskSpec("ttest_ss3", level="node", label_type="multiclass", num_outputs=3, metrics=["accuracy"],
                 primary_metric="accuracy", loader=functools.partial(_records, "ss3"), **base),
        TaskSpec("ttest_rsa", level="node", label_type="regression", num_outputs=1, metrics=["mae", "pearson"],
                 primary_metric="pearson", loader=functools.partial(_records, "rsa"), **base),
        TaskSpec("ttest_helix", level="graph", label_type="regression", num_outputs=1, metrics=["mae"],
                 primary_metric="mae", higher_is_better=False, loader=functools.partial(_records, "helix"),
                 **base),
    ]
    for spec in specs:
        register_task(spec, overwrite=True)


_register()


class StartStep(Callback):
    """Writes ``global_step current_epoch`` at train start to ``path`` (0 0 for a fresh run, later for a resume)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_start(self, trainer, pl_module) -> None:
        Path(self.path).write_text(f"{trainer.global_step} {trainer.current_epoch}")


def fill_cache(cache_root: Path) -> Path:
    """Embed the 32 test chains with the one-hot backbone into ``cache_root`` (the real cache API)."""
    from pa_geo.cache.runner import embed_proteins

    proteins = [r.protein for r in _structuredb(str(DATA_ROOT))]
    embed_proteins(backbone(), proteins, cache_root, progress=False)
    return cache_root


def head_config(task_level: str) -> dict[str, Any]:
    """class_path of the head for a level (its widths are bound from the encoder and the task)."""
    cls = "NodeHead" if task_level == "node" else "GraphHead"
    return {"class_path": f"pa_geo.nn.heads.{cls}", "init_args": {}}


def config(tmp: Path, task: str = "ttest_ss3", level: str = "node",
           aux: dict[str, tuple[str, int, float]] | None = None, max_epochs: int = 1, **trainer: Any) -> dict:
    """A full LightningCLI config dict: mean-embedding encoder + head over the one-hot cache."""
    cfg = {
        "seed_everything": 0,
        "trainer": {"max_epochs": max_epochs, "accelerator": "cpu", "devices": 1, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(tmp),
                    "enable_checkpointing": False, **trainer},
        "model": {"encoder": {"class_path": "pa_geo.nn.baselines.MeanEmbeddingEncoder",
                              "init_args": {"levels": {FIELD: EMB_DIM}}},
                  "head": head_config(level), "lr": 1e-2, "warmup_steps": 0},
        "data": {"task": task, "data_root": str(DATA_ROOT), "batch_nodes": 600, "seed": 0,
                 "embeddings": [{"cache": str(tmp / "cache"), "backbone": BACKBONE, "layers": [0]}],
                 "graph": {"kind": "residue", "radius": 8.0, "sequential": True}},
    }
    if aux:
        cfg["model"]["aux_tasks"] = {t: w for t, (_, _, w) in aux.items()}
        cfg["model"]["aux_heads"] = {t: head_config(lv) for t, (lv, _, _) in aux.items()}
        cfg["data"]["aux_data_roots"] = {t: None for t in aux}
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    """Dump ``cfg`` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
