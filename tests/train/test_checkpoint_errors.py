"""Checkpoints: every reader (``pa-geo fit/validate/test/predict --ckpt_path``, the trainer's checkpoint IO,
``PaGeoModule.load_from_checkpoint``) turns a missing, empty, truncated, damaged, foreign or mismatched file into one
line naming the file; writes are atomic."""
from __future__ import annotations

import argparse
import copy
import os
import re
import signal
from pathlib import Path

import pytest
import torch

from pa_geo.cli import main
from pa_geo.errors import CheckpointError
from tests.helpers import training as tk
from pa_geo.train.checkpoints import AtomicCheckpointIO, load_checkpoint, write_atomic
from pa_geo.train.cli import build_cli
from pa_geo.train.module import PaGeoModule

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _cfg(work: Path, name: str, hidden: int | None = None) -> dict:
    cfg = tk.config(work / name, enable_checkpointing=True)
    cfg["data"]["embeddings"][0]["cache"] = str(work / "cache")
    cfg["data"]["graph_cache"] = str(work / "stores")
    if hidden:
        cfg["model"]["head"]["init_args"] = {"hidden_dim": hidden}
    cfg["trainer"]["callbacks"] = [{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                                    "init_args": {"dirpath": str(work / name / "ckpt"), "filename": "last",
                                                  "monitor": "step", "mode": "max"}}]
    return cfg


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real checkpoints (``plain/ckpt/last.ckpt``: linear head; ``wide/ckpt/last.ckpt``: hidden width 16) and a
    folder of damaged copies of the first (``bad/<case>.ckpt``)."""
    root = tmp_path_factory.mktemp("ckpt")
    tk.fill_cache(root / "cache")
    for name, hidden in (("plain", None), ("wide", 16)):
        assert main(["fit", "--config", str(tk.write_config(root / f"{name}.yaml", _cfg(root, name, hidden)))]) == 0
    good = (root / "plain" / "ckpt" / "last.ckpt").read_bytes()
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.ckpt").write_bytes(b"")
    (bad / "truncated.ckpt").write_bytes(good[: len(good) // 2])
    (bad / "random.ckpt").write_bytes(os.urandom(4096))
    (bad / "config.ckpt").write_text((root / "plain.yaml").read_text())
    flipped = bytearray(good)
    flipped[len(good) * 2 // 3] ^= 0xFF  # inside a tensor's bytes: torch alone would load it silently
    (bad / "flipped.ckpt").write_bytes(bytes(flipped))
    torch.save({"a": 1}, bad / "dict.ckpt")
    torch.save(torch.zeros(3), bad / "tensor.ckpt")
    torch.save({"state_dict": {}, "args": argparse.Namespace(x=1)}, bad / "object.ckpt")
    (bad / "folder.ckpt").mkdir()
    legacy = torch.load(root / "wide" / "ckpt" / "last.ckpt", weights_only=True)
    for key in ("encoder", "head", "aux_heads"):  # as saved before checkpoints described their model
        legacy["hyper_parameters"].pop(key)
    torch.save(legacy, root / "wide" / "ckpt" / "legacy.ckpt")
    return root


BAD = {  # file -> what the one line says
    "missing": "no such checkpoint file",
    "folder": "is a folder, not a checkpoint file",
    "empty": "empty file (0 bytes)",
    "truncated": "truncated checkpoint",
    "random": "not a PyTorch checkpoint",
    "config": "not a PyTorch checkpoint (a text file)",
    "flipped": "damaged checkpoint (archive/data/",
    "dict": "not a training checkpoint (it holds a dict of a,",
    "tensor": "not a training checkpoint (it holds a Tensor",
    "object": "holds Python objects (argparse.Namespace)",
}


@pytest.mark.parametrize("case", list(BAD))
def test_load_checkpoint_refuses_with_one_line(work: Path, case: str) -> None:
    path = work / "bad" / f"{case}.ckpt"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and BAD[case] in msg and "\n" not in msg
    assert "weights_only" not in msg and "Traceback" not in msg


def test_load_checkpoint_reads_a_real_checkpoint(work: Path) -> None:
    ckpt = load_checkpoint(work / "plain" / "ckpt" / "last.ckpt")
    assert ckpt["global_step"] > 0 and "heads.ttest_ss3.net.lins.0.weight" in ckpt["state_dict"]
    assert "ResumeState" in ckpt["callbacks"]  # the resume state travels in every checkpoint


def _error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
@pytest.mark.parametrize("case", ["missing", "truncated", "random", "object"])
def test_every_subcommand_gives_one_line_for_a_bad_ckpt_path(work: Path, capsys: pytest.CaptureFixture, command: str,
                                                             case: str) -> None:
    path = work / "bad" / f"{case}.ckpt"
    line = _error(capsys, [command, "--config", str(work / "plain.yaml"), "--ckpt_path", str(path)])
    assert line.startswith(f"pa-geo {command}: error: {path}: ") and BAD[case] in line


@pytest.mark.parametrize("command", ["validate", "fit"])
def test_a_checkpoint_of_another_head_width_names_the_parameter_and_both_shapes(
        work: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    """A checkpoint that does not say how its model was built (saved before checkpoints carried the encoder / head
    settings) is loaded into the model the config builds: one line when the widths differ."""
    legacy = work / "wide" / "ckpt" / "legacy.ckpt"
    line = _error(capsys, [command, "--config", str(work / "plain.yaml"), "--ckpt_path", str(legacy)])
    assert line == (f"pa-geo {command}: error: {legacy}: trained with a head of width 16 "
                    f"(heads.ttest_ss3.net.lins.0.weight is [16, {tk.EMB_DIM}]), the config builds 3 ([3, "
                    f"{tk.EMB_DIM}]); 1 more parameter differs; load it with the config it was trained with")


def test_a_checkpoint_that_describes_its_model_is_built_as_trained_and_says_what_it_replaced(
        work: Path, capsys: pytest.CaptureFixture) -> None:
    wide = work / "wide" / "ckpt" / "last.ckpt"
    assert main(["validate", "--config", str(work / "plain.yaml"), "--ckpt_path", str(wide)]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert notes == [f"pa-geo validate: note: {wide}: the model is built as it was trained, not as the config says: "
                     f"model.head.init_args.hidden_dim 16 (the config: None)"]
    assert main(["validate", "--config", str(work / "wide.yaml"), "--ckpt_path", str(wide)]) == 0
    assert "note:" not in capsys.readouterr().err  # its own config: nothing replaced


def _model(work: Path, hidden: int | None = None) -> PaGeoModule:
    return build_cli(["--config", str(tk.write_config(work / "m.yaml", _cfg(work, "m", hidden)))], run=False).model


def test_load_from_checkpoint_checks_the_file_and_the_weights(work: Path) -> None:
    plain = _model(work)
    kwargs = {"encoder": plain.encoder, "head": plain.heads["ttest_ss3"], "task": "ttest_ss3"}
    loaded = PaGeoModule.load_from_checkpoint(work / "plain" / "ckpt" / "last.ckpt", **kwargs)
    saved = torch.load(work / "plain" / "ckpt" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(loaded.heads["ttest_ss3"].net.lins[0].weight, saved["heads.ttest_ss3.net.lins.0.weight"])
    for case in ("truncated", "flipped", "object"):
        with pytest.raises(CheckpointError, match=re.escape(BAD[case])):
            PaGeoModule.load_from_checkpoint(work / "bad" / f"{case}.ckpt", **kwargs)
    wide = work / "wide" / "ckpt" / "last.ckpt"
    with pytest.raises(CheckpointError, match=rf"^{wide}: trained with a head of width 16 .*\[3, {tk.EMB_DIM}\]"):
        PaGeoModule.load_from_checkpoint(wide, **{**kwargs, "head": _model(work).heads["ttest_ss3"]})
    # a deeper head than the checkpoint's: a parameter only the model has (strict) is one line too
    deep = _model(work, hidden=16)
    deep.heads["ttest_ss3"].net.lins.append(torch.nn.Linear(3, 3))
    with pytest.raises(CheckpointError, match=r"the checkpoint lacks heads\.ttest_ss3\.net\.lins\.2\.weight \(and 1 "):
        deep.load_state_dict(torch.load(wide, weights_only=True)["state_dict"])


def test_trainer_reads_through_the_validating_io_and_writes_atomically(work: Path) -> None:
    """Research code: a plain ``Trainer`` running a PaGeoModule gets the same checks (the module's callbacks
    install the checkpoint IO)."""
    cli = build_cli(["--config", str(tk.write_config(work / "t.yaml", _cfg(work, "t")))], run=False)
    with pytest.raises(CheckpointError, match="truncated checkpoint"):
        cli.trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path=str(work / "bad" / "truncated.ckpt"))
    assert type(cli.trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    cli.trainer.save_checkpoint(work / "t" / "saved.ckpt")
    assert load_checkpoint(work / "t" / "saved.ckpt")["state_dict"].keys() == cli.model.state_dict().keys()
    assert not list((work / "t").glob(".*.tmp"))  # no temporary file left behind


def test_write_atomic_keeps_the_old_file_when_the_writer_fails_or_is_killed(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, target)
    before = target.read_bytes()

    def half_then_fail(f) -> None:
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    # a writer killed (SIGKILL) half-way: the file still holds the old checkpoint, complete
    pid = os.fork()
    if pid == 0:  # child: dies inside the write
        def die(f) -> None:
            f.write(b"PK" * 50000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        write_atomic(target, die)
        os._exit(0)  # never reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert target.read_bytes() == before and torch.equal(load_checkpoint(target)["state_dict"]["w"], torch.ones(2))


def test_remote_paths_keep_lightnings_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr("lightning_fabric.plugins.io.torch_io.TorchCheckpointIO.save_checkpoint",
                        lambda self, ckpt, path, storage_options=None: seen.append(str(path)))
    AtomicCheckpointIO().save_checkpoint({"state_dict": {}}, "memory://bucket/last.ckpt")
    assert seen == ["memory://bucket/last.ckpt"]
    AtomicCheckpointIO().save_checkpoint(copy.deepcopy({"state_dict": {}}), tmp_path / "local.ckpt")
    assert seen == ["memory://bucket/last.ckpt"] and (tmp_path / "local.ckpt").is_file()


def test_predict_from_a_checkpoint_alone_reads_through_the_same_checks(work: Path, capsys: pytest.CaptureFixture
                                                                      ) -> None:
    structure = sorted((tk.REPO / "data" / "pdb_dssp").glob("*.pdb.gz"))[0]
    out = work / "pred.csv"
    plain = work / "plain" / "ckpt" / "last.ckpt"
    assert main(["predict", "--ckpt_path", str(plain), "--input", str(structure), "--output", str(out)]) == 0
    assert out.read_text().startswith("id,")
    capsys.readouterr()
    for case in ("truncated", "object", "missing"):
        path = work / "bad" / f"{case}.ckpt"
        line = _error(capsys, ["predict", "--ckpt_path", str(path), "--input", str(structure), "--output", str(out)])
        assert line.startswith(f"pa-geo predict: error: {path}: ") and BAD[case] in line
    legacy = work / "wide" / "ckpt" / "legacy.ckpt"
    line = _error(capsys, ["predict", "--ckpt_path", str(legacy), "--input", str(structure), "--output", str(out)])
    assert line == (f"pa-geo predict: error: {legacy}: the checkpoint does not say how its model was built (no encoder "
                    f"or head settings: saved by an older pa_geo, or from a model built in Python); pass encoder= and "
                    f"head= to load_from_checkpoint, or predict with the config it was trained with: pa-geo predict "
                    f"--config <config> --ckpt_path {legacy}")
    loaded = PaGeoModule.load_from_checkpoint(work / "wide" / "ckpt" / "last.ckpt")  # no other argument
    assert loaded.heads["ttest_ss3"].net.lins[0].weight.shape == (16, tk.EMB_DIM)
