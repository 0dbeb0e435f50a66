"""Pieces of the resume / reliability tests that run inside ``pa-geo`` subprocesses. Run as a module, it is the
``pa-geo`` program with the test tasks registered: ``python -m tests.helpers.resume fit --config ...``
(:data:`PROGRAM`)."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import Callback

from tests.helpers import training as tk  # registers the ttest_* tasks in this process

PROGRAM = [sys.executable, "-m", "tests.helpers.resume"]  # run with tests.helpers.subprocess_env()


class LossLog(Callback):
    """Appends ``<global step> <loss>`` after every training step to ``path`` (flushed: survives a kill -9)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        with open(self.path, "a") as f:
            f.write(f"{trainer.global_step} {float(loss):.9e}\n")


class KillAt(Callback):
    """``kill -9`` of this process when batch ``batch`` of epoch ``epoch`` is about to be trained."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


def levels_config(tmp: Path, cache: Path, run: str, max_epochs: int = 3, num_workers: int = 0) -> dict:
    """The shipped trainer settings (``configs/base/trainer.yaml``: its checkpoint callbacks write
    ``<run>/checkpoints/last.ckpt`` every epoch) and the shipped model (``ProteinAdapter`` -> ``MultiScalePredictor``,
    dropout on) at small widths over TWO embedding levels (one-hot and BLOSUM62 rows), a NodeHead with dropout,
    SS3 on real chains; run folder ``tmp/run``. Add callbacks on the command line (:func:`callback_args`)."""
    cfg = tk.config(tmp / run, max_epochs=max_epochs)
    cfg = {"extends": str(tk.REPO / "configs" / "base" / "trainer.yaml"), **cfg}
    for key in ("logger", "enable_checkpointing"):
        del cfg["trainer"][key]
    cfg["trainer"]["log_every_n_steps"] = 1
    dims = {"emb_onehot_0": tk.EMB_DIM, "emb_blosum62_0": 20}
    cfg["model"]["encoder"] = {
        "class_path": "pa_geo.nn.encoder.AdapterEncoder",
        "init_args": {
            "adapter": {"class_path": "pa_geo.nn.adapter.ProteinAdapter",
                        "init_args": {"levels": dims, "d_model": 16, "n_blocks": 1, "n_heads": 2, "dropout": 0.2}},
            "predictor": {"class_path": "pa_geo.nn.predictor.MultiScalePredictor",
                          "init_args": {"in_dim": 16, "hidden_dim": 16, "num_scales": 2, "dropout": 0.2}}}}
    cfg["model"]["head"] = {"class_path": "pa_geo.nn.heads.NodeHead", "init_args": {"hidden_dim": 16, "dropout": 0.3}}
    cfg["model"]["warmup_steps"] = 2
    cfg["data"].update(batch_nodes=250, num_workers=num_workers, graph_cache=str(tmp / "stores"),
                       embeddings=[{"cache": str(cache), "backbone": "onehot", "layers": [0]},
                                   {"cache": str(cache), "backbone": "blosum62", "layers": [0]}])
    return cfg


def callback_args(losses: Path, kill_at: tuple[int, int] | None = None) -> list[str]:
    """Command-line arguments adding :class:`LossLog` (and :class:`KillAt`) to the config's callbacks."""
    args = ["--trainer.callbacks+=tests.helpers.resume.LossLog", f"--trainer.callbacks.path={losses}"]
    if kill_at is not None:
        args += ["--trainer.callbacks+=tests.helpers.resume.KillAt", f"--trainer.callbacks.epoch={kill_at[0]}",
                 f"--trainer.callbacks.batch={kill_at[1]}"]
    return args


def fill_two_level_cache(cache: Path) -> Path:
    """One-hot and BLOSUM62 rows of the test chains in ``cache`` (the real embed runner)."""
    from pa_geo.backbones.base import get_backbone
    from pa_geo.cache.runner import embed_proteins

    tk.fill_cache(cache)
    proteins = [r.protein for r in tk._structuredb(str(tk.DATA_ROOT))]
    embed_proteins(get_backbone("blosum62", layers=[0]), proteins, cache, progress=False)
    return cache


if __name__ == "__main__":
    from pa_geo.cli import main

    sys.exit(main(sys.argv[1:]))

