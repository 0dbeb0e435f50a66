"""Training checkpoints: read through one validating loader, written atomically.

Every path that reads a checkpoint goes through :func:`load_checkpoint`: ``pa-geo fit/validate/test/predict
--ckpt_path`` (the CLI checks the file before LightningCLI reads its hyper-parameters, the trainer reads it through
:class:`AtomicCheckpointIO`), ``PaGeoModule.load_from_checkpoint`` and ``pa-geo predict --ckpt_path`` without a
config. A missing, empty, truncated, damaged or foreign file is one :class:`~pa_geo.errors.CheckpointError` line
naming the file, what is wrong and what to do, never torch's unpickling advice; a checkpoint of another model
(a different head or encoder size) is one line naming the first parameter that differs and both shapes
(:func:`check_state_dict`, called by ``PaGeoModule.load_state_dict``).

Writes: Lightning's own writer (``lightning_fabric.utilities.cloud_io._atomic_save``) stages a checkpoint in the
system temporary folder and then *moves* it, which is a copy, in place, when that folder is on another file system,
and never syncs it to disk. :class:`AtomicCheckpointIO` writes a temporary file next to the target, syncs it and
renames it over the target, so a reader sees the old or the new checkpoint, never a part of one.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback

from pa_geo.errors import CheckpointError

SOURCE_KEY = "pa_geo_checkpoint_file"  # set on a loaded checkpoint: the file it came from (for later messages)
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format is a zip archive
PICKLE_MAGIC = b"\x80"  # torch's legacy (pre-1.6) format starts with a pickle protocol opcode
LIGHTNING_PATH_KEYWORDS = ("last", "best", "hpc", "registry")  # --ckpt_path values Lightning resolves itself
USE_ANOTHER = "use another checkpoint"
_LOADING: contextvars.ContextVar[str | None] = contextvars.ContextVar("pa_geo_loading_checkpoint", default=None)


def _neighbours(path: Path) -> str:
    """`` (checkpoints there: a.ckpt, b.ckpt)`` for the folder of ``path``, or nothing."""
    folder = path.parent
    found = sorted(p.name for p in folder.glob("*.ckpt") if p != path) if folder.is_dir() else []
    return f" (checkpoints there: {', '.join(found[:4])}{', ...' if len(found) > 4 else ''})" if found else ""


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _torch_reason(err: BaseException) -> str:
    """The first sentence of a torch / zip error: its advice (``weights_only``, "likely corrupted") left out."""
    text = " ".join(str(err).split()) or type(err).__name__
    text = re.split(r"(?<=[a-z0-9)])\. ", text)[0].rstrip(".")
    return text if "weights_only" not in text else type(err).__name__


def _check_file(path: Path) -> None:
    """Refuse what cannot be a checkpoint before unpickling anything: missing, a folder, empty, truncated, text."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file{_neighbours(path)}")
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.ckpt"))
        hint = f" (it holds {', '.join(inside[:4])})" if inside else ""
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file{hint}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint (a save or copy that did not finish); "
                              f"{USE_ANOTHER}{_neighbours(path)}")
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: truncated checkpoint ({size} bytes; the end of its zip archive is "
                                  f"missing: a save or copy that did not finish); copy it again or "
                                  f"{USE_ANOTHER}{_neighbours(path)}")
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()  # every member's CRC: byte flips that torch itself would load silently
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise CheckpointError(f"{path}: damaged checkpoint ({_torch_reason(err)}); {USE_ANOTHER}"
                                  f"{_neighbours(path)}") from None
        if bad is not None:
            raise CheckpointError(f"{path}: damaged checkpoint ({bad} fails its checksum); {USE_ANOTHER}"
                                  f"{_neighbours(path)}")
    elif not head.startswith(PICKLE_MAGIC):
        what = "a text file" if _is_text(head) else f"{size} bytes starting {head[:8]!r}"
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({what}); pass a .ckpt file written by pa-geo fit")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool = True) -> dict[str, Any]:
    """The checkpoint dict in ``path``, checked; every failure is one :class:`CheckpointError` line.

    Args:
        path: a ``.ckpt`` file (``torch.save`` format, as Lightning writes it).
        map_location: ``torch.load``'s (default: tensors on the CPU; Lightning moves them to the model's device).
        weights_only: load plain values and tensors only (a training checkpoint holds nothing else); objects of
            other classes are refused, never unpickled.

    Returns:
        The checkpoint, with ``checkpoint[SOURCE_KEY] = str(path)`` so later checks (``check_state_dict``) can
        name the file. Lightning's keys: ``state_dict`` (``{name: Tensor}``), ``pytorch-lightning_version``,
        ``hyper_parameters``, loops, callbacks, optimizer states.
    """
    p = Path(path)
    _check_file(p)
    try:
        checkpoint = torch.load(p, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(f"{p}: holds Python objects{what} that a pa-geo checkpoint never contains, so it is not "
                              f"loaded (unpickling them could run code); pass a .ckpt file written by pa-geo fit") \
            from None
    except Exception as err:  # torch / zip / pickle internals: anything else is a damaged file
        raise CheckpointError(f"{p}: damaged checkpoint ({_torch_reason(err)}); {USE_ANOTHER}{_neighbours(p)}") \
            from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping):
        if isinstance(checkpoint, dict):
            keys = sorted(map(str, checkpoint))
            what = f"a dict of {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"
        else:
            what = f"a {type(checkpoint).__name__}"
        raise CheckpointError(f"{p}: not a training checkpoint (it holds {what}, no state_dict of weights); pass a "
                              f".ckpt file written by pa-geo fit")
    checkpoint[SOURCE_KEY] = str(p)
    return checkpoint


def checkpoint_file(checkpoint: Mapping[str, Any]) -> str | None:
    """The file a checkpoint dict was read from (:func:`load_checkpoint` stamps it; :func:`loading` covers
    Lightning's own reads inside ``load_from_checkpoint``), or None."""
    return checkpoint.get(SOURCE_KEY) or _LOADING.get()


@contextlib.contextmanager
def loading(path: Any) -> Any:
    """Inside the block, checkpoint dicts without a stamp count as read from ``path`` (for error messages)."""
    token = _LOADING.set(str(path))
    try:
        yield
    finally:
        _LOADING.reset(token)


def check_ckpt_path(value: Any) -> bool:
    """``--ckpt_path`` of a CLI run: a file path is loaded and checked (:func:`load_checkpoint`) before Lightning
    touches it (True); Lightning's keywords (``last``, ``best``, ...) and None pass (False)."""
    if value is None or str(value) in LIGHTNING_PATH_KEYWORDS:
        return False
    load_checkpoint(value)
    return True


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def replaced_settings(before: Mapping[str, Any], after: Mapping[str, Any], limit: int = 4) -> str | None:
    """``"head.init_args.hidden_dim 16 (the config: None); lr 0.01 (the config: 0.001)"``: the settings that differ
    between ``before`` and ``after`` (nested dicts), at most ``limit`` named; None when none differ."""
    old, new = _flat(before), _flat(after)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if not changed:
        return None
    named = "; ".join(f"{k} {new.get(k)!r} (the config: {old.get(k)!r})" for k in changed[:limit])
    return named + (f"; and {len(changed) - limit} more" if len(changed) > limit else "")


def _part(name: str) -> str:
    return "head" if name.startswith("heads.") else "encoder" if name.startswith("encoder.") else "model"


def _shape(shape: torch.Size | tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def _width_words(name: str, saved: torch.Size, built: torch.Size) -> str:
    """"a head of width 16 ..., the config builds 3": the first differing dimension in words."""
    part = _part(name)
    if len(saved) != len(built):
        return f"a {part} whose {name} is {_shape(saved)}, the config builds {_shape(built)}"
    dim = next(i for i, (a, b) in enumerate(zip(saved, built)) if a != b)
    which = "width" if dim == 0 else "input width" if dim == 1 and len(saved) == 2 else f"size {dim}"
    return (f"a {part} of {which} {int(saved[dim])} ({name} is {_shape(saved)}), the config builds {int(built[dim])} "
            f"({_shape(built)})")


def _more_differ(n: int) -> str:
    return "" if n < 1 else f"; {n} more parameter{'s differ' if n > 1 else ' differs'}"


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def check_state_dict(model: torch.nn.Module, state_dict: Mapping[str, Any], strict: bool = True,
                     source: str | None = None) -> None:
    """Raise one :class:`CheckpointError` line when ``state_dict`` does not fit ``model``.

    A parameter whose shape differs is always an error, named with both shapes and the first differing dimension
    in words ("trained with a head of width 16 (heads.t.net.lins.0.weight is [16, 21]), the config builds 3
    ([3, 21])"); with ``strict``, so are parameters only one side has. ``source`` names the checkpoint file.
    """
    own = model.state_dict()
    where = source or "checkpoint"
    todo = "load it with the config it was trained with"
    differ = [k for k, v in state_dict.items() if k in own and isinstance(v, torch.Tensor)
              and tuple(v.shape) != tuple(own[k].shape)]
    if differ:
        first = differ[0]
        raise CheckpointError(f"{where}: trained with {_width_words(first, state_dict[first].shape, own[first].shape)}"
                              f"{_more_differ(len(differ) - 1)}; {todo}")
    if not strict:
        return
    extra = [k for k in state_dict if k not in own]
    missing = [k for k in own if k not in state_dict]
    if extra:
        raise CheckpointError(f"{where}: the checkpoint has {extra[0]}{_more(extra)}, which the {_part(extra[0])} the "
                              f"config builds lacks (trained with another {_part(extra[0])}); {todo}")
    if missing:
        raise CheckpointError(f"{where}: the checkpoint lacks {missing[0]}{_more(missing)}, which the "
                              f"{_part(missing[0])} the config builds has (trained with another "
                              f"{_part(missing[0])}); {todo}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, sync it, then rename it over ``path``: readers
    (and a run killed meanwhile) see the old file or the new one, never a part."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # the rename itself reaches the disk with the folder's entry
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic local writes (:func:`write_atomic`) and validated reads
    (:func:`load_checkpoint`). Remote paths (``s3://`` ...) keep Lightning's own handling."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        write_atomic(path, lambda f: torch.save(checkpoint, f))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, weights_only=weights_only)
        return load_checkpoint(path, map_location="cpu" if map_location is None else map_location,
                               weights_only=weights_only is not False)


class CheckpointGuard(Callback):
    """Installs :class:`AtomicCheckpointIO` on the trainer's strategy (unless a custom checkpoint IO is already
    set) before Lightning restores or saves anything; ``PaGeoModule.configure_callbacks`` adds it to every run."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        strategy = trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()
