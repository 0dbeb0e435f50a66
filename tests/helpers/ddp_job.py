"""DDP job for tests/train/test_train_ddp.py: ``python -m tests.helpers.ddp_job OUT_DIR CACHE_DIR`` trains the
adapter model on 2 CPU processes (gloo) through the CLI (Lightning re-launches the other rank with the same ``-m``
command); every rank writes ``OUT_DIR/rank<r>.json`` with hashes of its weights."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from pytorch_lightning.callbacks import Callback

from tests.helpers import training as tk


def weights_hash(module) -> str:
    """sha256 over a module's state dict (names and bytes, sorted by name)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class RankWeights(Callback):
    """Hash of the model's weights at train start and end, per rank."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.start = ""

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = weights_hash(pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        sampler = trainer.train_dataloader.batch_sampler
        record = {"start": self.start, "end": weights_hash(pl_module), "global_step": trainer.global_step,
                  "world_size": trainer.world_size, "batches": trainer.num_training_batches,
                  "sampler": [type(sampler).__name__, sampler.num_replicas, sampler.rank, sampler.with_epoch,
                              sampler.epoch]}
        Path(self.out_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def main() -> int:
    from pa_geo.train.cli import main as cli_main

    out, cache = Path(sys.argv[1]), sys.argv[2]
    cfg = tk.config(out, max_epochs=2, devices=2, strategy="ddp")
    cfg["data"]["embeddings"][0]["cache"] = cache
    cfg["data"]["batch_nodes"] = 300
    cfg["model"]["encoder"] = {"class_path": "pa_geo.nn.encoder.AdapterEncoder", "init_args": {
        "adapter": {"class_path": "pa_geo.nn.adapter.ProteinAdapter",
                    "init_args": {"levels": {tk.FIELD: tk.EMB_DIM}, "d_model": 16, "n_blocks": 1, "n_heads": 2}},
        "predictor": {"class_path": "pa_geo.nn.predictor.MultiScalePredictor",
                      "init_args": {"in_dim": 16, "hidden_dim": 16, "num_scales": 2, "pool": "graclus"}}}}
    cfg["trainer"]["callbacks"] = [{"class_path": "tests.helpers.ddp_job.RankWeights", "init_args": {"out_dir": str(out)}}]
    return cli_main(["fit", "--config", str(tk.write_config(out / "ddp.yaml", cfg))])


if __name__ == "__main__":
    sys.exit(main())
