"""Auxiliary tasks on the primary's batches (``data.aux_shared_batches``): labels attached, one encoder pass per
step, the same losses as separate batches of the same examples."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pa_geo.demo.data import DATA_DIR
from pa_geo.errors import DatasetError
from pa_geo.graphs.schema import embedding_field
from pa_geo.train.cli import build_cli
from pa_geo.train.shared_batches import WithAuxLabels, aux_key, task_view
from tests.helpers.caches import fill_random_cache

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def shared_cli(tmp_path_factory):
    """The demo's structure experiment (8-state DSSP + RSA) on 6 chains per split, random embeddings."""
    tmp = tmp_path_factory.mktemp("shared")
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        cli = build_cli(["--config", str(CONFIGS / "multitask" / "demo_ss8_rsa.yaml"), "--data.max_records", "6",
                         "--data.num_workers", "0", "--data.batch_nodes", "700", "--data.aux_shared_batches", "true",
                         "--data.data_root", str(DATA_DIR), "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                         "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp / "run"),
                         "--trainer.enable_progress_bar", "false"], run=False)
        dm, model = cli.datamodule, cli.model
        levels = model.encoder.adapter.levels
        for entry in dm.embeddings:
            dims = {int(layer): levels[embedding_field(entry["backbone"], layer)] for layer in entry["layers"]}
            fill_random_cache(entry["cache"], entry["backbone"], dims, dm.proteins())
        dm.setup("fit")
        yield cli
    finally:
        os.chdir(cwd)


def test_the_training_loader_carries_every_tasks_labels(shared_cli):
    dm = shared_cli.datamodule
    loader = dm.train_dataloader()
    assert not isinstance(loader, dict)  # one loader: the primary's batches
    batch = next(iter(loader))
    assert batch.task == "demo_ss8" and aux_key("demo_rsa", "node_y") in batch
    rsa = dm.dataset("demo_rsa", "train")
    first = rsa.store.get(0)
    n = int(first.num_nodes)
    ids = list(batch.record_id)
    i = ids.index(first.record_id)
    start = int(batch.ptr[i])
    assert torch.equal(batch[aux_key("demo_rsa", "node_y")][start:start + n], first.node_y)
    view = task_view(batch, "demo_rsa")
    assert view.task == "demo_rsa" and view.node_y is batch[aux_key("demo_rsa", "node_y")]
    assert view.batch is batch.batch and batch.node_y.dtype == torch.int64  # the primary's labels stay


def test_one_encoder_pass_per_step_and_the_losses_of_separate_batches(shared_cli):
    """The shared step runs the encoder once and its per-task losses equal those of the two tasks' own batches of
    the same examples (dropout off)."""
    dm, model = shared_cli.datamodule, shared_cli.model
    model.eval()
    batch = next(iter(dm.train_dataloader()))
    calls = []
    handle = model.encoder.register_forward_hook(lambda *_: calls.append(1))
    logged = {}
    model.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    total = model.training_step(batch, 0)
    handle.remove()
    assert len(calls) == 1
    alone = {t: float(model._task_loss(task_view(batch, t) if t != "demo_ss8" else batch)[0])
             for t in ("demo_ss8", "demo_rsa")}
    assert logged["train/demo_ss8/loss"] == pytest.approx(alone["demo_ss8"], rel=1e-5)
    assert logged["train/demo_rsa/loss"] == pytest.approx(alone["demo_rsa"], rel=1e-5)
    assert float(total) == pytest.approx(alone["demo_ss8"] + model.weights["demo_rsa"] * alone["demo_rsa"], rel=1e-5)
    total.backward()
    assert all(p.grad is not None for p in model.heads["demo_rsa"].parameters())


def test_records_in_another_order_are_refused_in_one_line(shared_cli):
    dm = shared_cli.datamodule
    primary, aux = dm.dataset("demo_ss8", "train"), dm.dataset("demo_rsa", "train")

    class Reversed:
        store = type("S", (), {"get": staticmethod(lambda i: aux.store.get(len(aux) - 1 - i))})()

        def __len__(self) -> int:
            return len(aux)

    with pytest.raises(DatasetError, match="same records in the same order") as err:
        WithAuxLabels(primary, {"demo_rsa": Reversed()})[0]
    assert "\n" not in str(err.value)
