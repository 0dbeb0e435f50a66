"""Every shipped config (each task, every ablation composed by name on both demo experiments, multitask) is built
through the CLI parser and runs one forward + backward on a small batch of data written in its task's released
format, at the paths the config names (relative to the working directory), with embedding caches of random vectors
of the widths its levels name."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from pa_geo.graphs.schema import embedding_field
from tests.helpers.caches import fill_random_cache
from tests.helpers.formats import write_task_data
from pa_geo.train.cli import build_cli
from tests.helpers import DATA

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::FutureWarning")]
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TASKS = sorted(p.name for p in CONFIGS.glob("*.yaml"))
ABLATIONS = sorted(f"ablations/{a.name}" for a in (CONFIGS / "ablations").glob("*.yaml"))
DEMO_EXPERIMENTS = ["multitask/demo_ss8_rsa.yaml", "demo_solubility.yaml"]  # the two experiments of pa-geo demo
# GVP reads coordinates only (kNN edges, backbone features): on a sequence-only task it has no edges to train
NEEDS_STRUCTURE = {"ablations/gvp.yaml", "ablations/esm_gvp.yaml"}
CASES = [(t,) for t in TASKS] + [(e, a) for e in DEMO_EXPERIMENTS for a in ABLATIONS
                                  if not (e == "demo_solubility.yaml" and a in NEEDS_STRUCTURE)] + [
    ("fluorescence.yaml", "ablations/mlp_probe.yaml"),  # PEER's frozen ESM-1b probe
    ("res.yaml", "ablations/conv_e3nn.yaml"),  # the equivariant conv on atom graphs
] + [(t, f"embeddings/{e.name}") for t in ("lba_30.yaml", "demo_solubility.yaml", "res.yaml")
     for e in sorted((CONFIGS / "embeddings").glob("*.yaml")) if e.name != "hf.yaml"]


def _args(case: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for item in case:
        out += ["--config", str(CONFIGS / item)] if item.endswith(".yaml") else [item]
    small = ["--data.max_records", "4", "--data.num_workers", "0", "--trainer.accelerator", "cpu",
             "--trainer.devices", "1"]
    return out + small


def _levels(encoder: torch.nn.Module) -> dict[str, int]:
    adapter = getattr(encoder, "adapter", None)
    return dict(getattr(adapter, "levels", None) or getattr(adapter, "sequence_levels", None) or
                getattr(encoder, "levels", {}))


@pytest.mark.parametrize("case", CASES, ids=lambda c: "+".join(x.removesuffix(".yaml") for x in c))
def test_config_trains_one_step_on_its_data_format(case: tuple[str, ...], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # data roots, caches, stores and runs are relative paths in the configs
    cli = build_cli(_args(case), run=False)
    dm, model = cli.datamodule, cli.model
    for task, root in dm.roots.items():
        if dm.specs[task].name.startswith("demo_"):
            if not root.exists():
                os.symlink(DATA, root)
        else:
            write_task_data(task, root)
    proteins = {p.id: p for p in dm.proteins()}
    assert proteins and len(proteins) == len({p.id for t, s in dm.specs.items() for split in s.splits
                                              for r in dm.records(t, split) for p in r.proteins})
    levels = _levels(model.encoder)
    for entry in dm.embeddings:
        dims = {int(layer): levels.get(embedding_field(entry["backbone"], layer), 8) for layer in entry["layers"]}
        fill_random_cache(entry["cache"], entry["backbone"], dims, proteins.values())
    dm.setup("fit")
    loaders = dm.train_dataloader()
    # one training step as Lightning runs it: {task: batch} per task, or one shared batch with every task's labels
    step = {t: next(iter(loader)) for t, loader in loaders.items()} if isinstance(loaders, dict) \
        else next(iter(loaders))
    for task, batch in (step.items() if isinstance(step, dict) else [(dm.task, step)]):
        assert batch.task == task and batch.num_graphs >= 1
    logged: dict[str, float] = {}
    model.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    total = model.training_step(step, 0)
    assert torch.isfinite(total) and all(math.isfinite(v) for v in logged.values()), logged
    assert {f"train/{t}/loss" for t in model.heads} <= set(logged) if len(model.heads) > 1 else "train/loss" in logged
    total.backward()
    for task, head in model.heads.items():  # (an antisymmetric MutationHead's last bias cancels: its gradient is 0)
        grads = [p.grad for p in head.parameters()]
        assert head.bound and all(g is not None for g in grads), task
        assert sum(bool(g.abs().sum() > 0) for g in grads) >= len(grads) - 1, task
    trainable = [p for p in model.encoder.parameters() if p.requires_grad]
    reached = [p for p in trainable if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(reached) >= 0.8 * len(trainable), f"{len(reached)} of {len(trainable)} encoder tensors got gradients"
