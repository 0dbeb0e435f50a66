"""Exact resume on CPU: ``pa-geo fit`` killed with SIGKILL after a checkpoint and resumed with ``--ckpt_path`` gives the
per-step losses and final weights of the run that was never interrupted (shipped trainer settings, the adapter with
dropout over two embedding levels): no DataLoader workers and the end-of-epoch ``last.ckpt``; 2 workers and a
mid-epoch checkpoint (the resumed epoch's order and position: workers draw batches as soon as Lightning creates the
loader's iterator, so the epoch must be known before any epoch hook)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from tests.helpers import resume as rk
from tests.helpers import subprocess_env
from tests.helpers import training as tk
from pa_geo.train.resume import rng_state, set_rng_state

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EPOCHS = 2
SCENARIOS = {  # name: (num_workers, extra callback args, kill at (epoch, batch), checkpoint resumed from)
    "epoch_end_0_workers": (0, [], (1, 1), "checkpoints/last.ckpt"),
    "mid_epoch_2_workers": (2, ["--trainer.callbacks+=pytorch_lightning.callbacks.ModelCheckpoint",
                                "--trainer.callbacks.dirpath={run}/mid", "--trainer.callbacks.filename=mid",
                                "--trainer.callbacks.monitor=step", "--trainer.callbacks.mode=max",
                                "--trainer.callbacks.every_n_train_steps=2"], (1, 3), "mid/mid.ckpt"),
}


def _start(config: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*rk.PROGRAM, "fit", "--config", str(config), *args], env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def _losses(path: Path) -> dict[int, float]:
    """step -> loss; a step trained twice (before the kill and after the resume) must have given the same loss."""
    out: dict[int, float] = {}
    for line in path.read_text().split("\n"):
        if line:
            step, loss = line.split()
            assert out.setdefault(int(step), float(loss)) == float(loss), f"step {step} trained twice differently"
    return out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] > 0
    return ckpt["state_dict"]


@pytest.mark.slow
def test_killed_and_resumed_runs_match_the_uninterrupted_run(tmp_path: Path) -> None:
    cache = rk.fill_two_level_cache(tmp_path / "cache")
    configs = {}
    for name, (workers, *_rest) in {"full": (0,), **SCENARIOS}.items():
        configs[name] = tk.write_config(tmp_path / f"{name}.yaml",
                                        rk.levels_config(tmp_path, cache, name, EPOCHS, workers))

    def args(name: str, kill: tuple[int, int] | None) -> list[str]:
        extra = [a.format(run=tmp_path / name) for a in SCENARIOS[name][1]] if name in SCENARIOS else []
        return rk.callback_args(tmp_path / name / "losses.txt", kill) + extra

    first = {"full": _start(configs["full"], args("full", None))}
    first.update({n: _start(configs[n], args(n, kill)) for n, (_, _, kill, _) in SCENARIOS.items()})
    codes = {n: _wait(p) for n, p in first.items()}
    assert codes["full"][0] == 0, codes["full"][1][-2000:]
    for name in SCENARIOS:
        assert codes[name][0] == -9, f"{name}: not killed ({codes[name][1][-2000:]})"
    from_steps = {n: torch.load(tmp_path / n / ckpt, weights_only=True)["global_step"]
                  for n, (_, _, _, ckpt) in SCENARIOS.items()}
    resumed = {n: _start(configs[n], args(n, None) + ["--ckpt_path", str(tmp_path / n / ckpt)])
               for n, (_, _, _, ckpt) in SCENARIOS.items()}
    for name, proc in resumed.items():
        code, err = _wait(proc)
        assert code == 0, f"{name}: {err[-2000:]}"

    reference = _losses(tmp_path / "full" / "losses.txt")
    weights = _weights(tmp_path / "full" / "checkpoints" / "last.ckpt")
    steps_per_epoch = len(reference) // EPOCHS
    assert sorted(reference) == list(range(1, EPOCHS * steps_per_epoch + 1)) and steps_per_epoch >= 4
    for name in SCENARIOS:
        got = _losses(tmp_path / name / "losses.txt")
        assert got == reference, name  # every step, bit for bit (printed to 10 significant digits)
        final = _weights(tmp_path / name / "checkpoints" / "last.ckpt")
        assert final.keys() == weights.keys()
        assert all(torch.equal(final[k], weights[k]) for k in weights), name
    assert from_steps["epoch_end_0_workers"] == steps_per_epoch
    assert from_steps["mid_epoch_2_workers"] % steps_per_epoch != 0  # resumed inside an epoch (sampler position)


def test_rng_state_round_trip_restores_every_generator() -> None:
    import random

    import numpy as np

    state = rng_state()
    drawn = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(drawn[0], again[0]) and np.array_equal(drawn[1], again[1]) and drawn[2] == again[2]
    # stored as tensors and plain values: a checkpoint holding it loads with weights_only=True
    buf = __import__("io").BytesIO()
    torch.save({"rng": state}, buf)
    buf.seek(0)
    set_rng_state(torch.load(buf, weights_only=True)["rng"])
    assert torch.equal(torch.rand(3), drawn[0])


def test_sampler_skips_the_trained_batches_of_the_next_pass_only() -> None:
    from pa_geo.train.sampler import NodeBudgetBatchSampler

    sizes = [5, 60, 12, 33, 47, 8, 90, 21, 64, 17, 3, 40]
    sampler = NodeBudgetBatchSampler(sizes, budget=100, shuffle=True, seed=4, bucket_size=4)
    sampler.set_epoch(3)
    epoch3 = list(sampler)
    assert len(epoch3) >= 4
    sampler.skip_next(2)
    assert list(sampler) == epoch3[2:] and len(sampler) == len(epoch3)  # len stays the epoch's (Lightning's count)
    assert list(sampler) == epoch3  # only once


def test_datamodule_starts_training_loaders_where_a_checkpoint_stopped(tmp_path: Path) -> None:
    from pa_geo.train.datamodule import PaGeoDataModule

    tk.fill_cache(tmp_path / "cache")
    dm = PaGeoDataModule("ttest_ss3", str(tk.DATA_ROOT), [{"cache": str(tmp_path / "cache"), "backbone": "onehot",
                                                           "layers": [0]}], {"kind": "residue", "radius": 8.0},
                         batch_nodes=250, graph_cache=str(tmp_path / "stores"))
    dm.setup("fit")

    def ids(loader) -> list[list[str]]:
        return [list(b.record_id) for b in loader]

    loader = dm.train_dataloader()
    loader.batch_sampler.set_epoch(1)  # what Lightning does at every epoch start
    epoch1 = ids(loader)
    dm.resume_at(1, 2)  # a checkpoint saved after 2 batches of epoch 1
    resumed = dm.train_dataloader()
    assert ids(resumed) == epoch1[2:] and len(resumed) == len(epoch1)
    assert ids(resumed) == epoch1  # the next pass is whole again
    assert ids(dm.train_dataloader()) != epoch1  # later loaders start at epoch 0 as usual
