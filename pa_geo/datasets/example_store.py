"""Built examples on disk, read lazily: the store behind every training / evaluation split.

Layout of one store folder (written once, atomically: a temporary folder renamed into place)::

    examples.bin   one record per example: u32 header length | msgpack header | 8-byte aligned tensor bytes
    index.npy      int64 [N + 1] byte offsets of the records in examples.bin
    sizes.npy      int64 [N] nodes of every example (all its graphs): node-budget batching without reading items
    meta.json      settings, counts, skipped records, accumulator results (e.g. regression target statistics)

A header holds the ``Data`` class (``module:qualname``), per tensor field ``(name, stored dtype, dtype, shape,
offset)`` and the plain fields (str / int / float / bool / lists of them). Readers open ``examples.bin`` once per
process and read a record with ``os.pread``; tensors are ``torch.frombuffer`` views into one buffer per record.

Why not LMDB: reading an mmap'ed file leaves every page touched during an epoch in the reader's resident set, so RSS
grows with the dataset (``benchmarks/dataset_scale.py``: reading a 20k-graph, 3.3 GB store through ``mmap`` peaked at
3.9 GB RSS, through ``pread`` at 0.9 GB, as for 1k graphs); ``pread`` goes through the page cache, which RSS
does not count. Compaction: int64 tensors are stored as int32 when their values fit (edge indices, residue numbers),
and ``edge_attr`` and ``geom`` as float16 (:data:`HALF_FIELDS`; error below 1e-3 on features in [-2, 2]: RBFs, unit
vectors, clipped separations, cos / sin, scaled distances and counts): about half the bytes of float32 features
(``benchmarks/results/dataset_scale.json``). They are stored rather than derived on read because deriving needs the
graph builder and its settings in every reader and costs builder time on every read of every epoch (rebuilding a
graph takes about 15 times as long as decoding it), while disk is the cheaper resource.
Readers may keep float16 fields in float16 (``keep_half``): the training path does, and converts on the device.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
import shutil
import struct
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

import msgpack
import numpy as np
import torch
from torch_geometric.data import Data, Dataset

from pa_geo.errors import DatasetError

FORMAT_VERSION = 1
LOG = logging.getLogger("pa_geo.datasets")
_LEN = struct.Struct("<I")
_ALIGN = 8
_INT32 = (np.iinfo(np.int32).min, np.iinfo(np.int32).max)
_CLASSES: dict[str, type] = {}
_DTYPES: dict[str, torch.dtype] = {str(d).removeprefix("torch."): d for d in (
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
    torch.float32, torch.float64)}


def _class_key(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _class_of(key: str) -> type:
    if key not in _CLASSES:
        module, _, name = key.partition(":")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        _CLASSES[key] = obj
    return _CLASSES[key]


HALF_FIELDS = ("edge_attr", "geom")  # bounded features (|x| <~ 2): float16 keeps them to ~1e-3


def _stored_dtype(key: str, t: torch.Tensor, edge_float16: bool) -> torch.dtype:
    if t.dtype == torch.int64 and t.numel() and _INT32[0] <= int(t.min()) and int(t.max()) <= _INT32[1]:
        return torch.int32
    if t.dtype == torch.float32 and edge_float16 and key.endswith(HALF_FIELDS):
        return torch.float16
    return t.dtype


def encode_example(data: Data, edge_float16: bool = True) -> bytes:
    """One ``Data`` -> record bytes (see the module docstring). Values must be tensors or plain values."""
    tensors, plain, chunks, offset = [], {}, [], 0
    for key, value in data.items():
        if isinstance(value, torch.Tensor):
            stored = _stored_dtype(key, value, edge_float16)
            raw = value.detach().to("cpu", stored).contiguous().numpy().tobytes()
            pad = (-offset) % _ALIGN
            chunks.append(b"\0" * pad + raw)
            offset += pad
            tensors.append([key, str(stored).removeprefix("torch."), str(value.dtype).removeprefix("torch."),
                            list(value.shape), offset])
            offset += len(raw)
        elif isinstance(value, (str, int, float, bool, list, tuple)) or value is None:
            plain[key] = value
        else:
            raise DatasetError(f"example {data.get('record_id', '?')}: field {key!r} of type {type(value).__name__} "
                               f"cannot be stored")
    header = msgpack.packb({"c": _class_key(type(data)), "t": tensors, "o": plain}, use_bin_type=True)
    lead = b"\0" * ((-(_LEN.size + len(header))) % _ALIGN)
    return _LEN.pack(len(header)) + header + lead + b"".join(chunks)


def decode_example(buf: bytearray, keep_half: bool = False) -> Data:
    """Record bytes -> the ``Data`` (same class, fields, dtypes and shapes as encoded; ``keep_half``: fields stored
    in float16 stay float16, for a consumer that converts them later, e.g. on the GPU)."""
    (hlen,) = _LEN.unpack_from(buf)
    header = msgpack.unpackb(memoryview(buf)[_LEN.size:_LEN.size + hlen], raw=False)
    base = _LEN.size + hlen + (-(_LEN.size + hlen)) % _ALIGN
    fields: dict[str, Any] = header["o"]
    for key, stored, dtype, shape, offset in header["t"]:
        count = math.prod(shape)
        if count == 0:
            t = torch.empty(shape, dtype=_DTYPES[dtype])
        else:
            t = torch.frombuffer(buf, dtype=_DTYPES[stored], count=count, offset=base + offset)
            t = t.view(shape) if len(shape) != 1 else t
            t = t if stored == dtype or (keep_half and stored == "float16") else t.to(_DTYPES[dtype])
        fields[key] = t
    return _class_of(header["c"])(**fields)


def files_fingerprint(root: str | os.PathLike, limit: int = 200_000) -> str:
    """Hash of (relative path, size, mtime) of the files under ``root`` (a file: itself), sorted; 16 hex."""
    root = Path(root)
    h = hashlib.sha256(str(root.resolve()).encode())
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    for p in paths[:limit]:
        st = p.stat()
        h.update(f"{p.relative_to(root) if p != root else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class ExampleStore:
    """Read side of a store folder: ``len``, ``sizes`` (int64 ``[N]``), ``meta`` and ``get(i) -> Data``.

    Safe in DataLoader workers and DDP ranks: the file is opened lazily, once per process, read-only.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.meta: dict[str, Any] = json.loads((self.path / "meta.json").read_text())
            self.offsets = np.load(self.path / "index.npy")
            self.sizes = np.load(self.path / "sizes.npy")
        except (OSError, ValueError) as err:
            raise DatasetError(f"{self.path}: not a readable example store ({err}); delete it to rebuild") from None
        if self.meta.get("format") != FORMAT_VERSION or len(self.offsets) != len(self.sizes) + 1:
            raise DatasetError(f"{self.path}: example store of another format; delete it to rebuild")
        self._fd, self._pid = -1, -1

    def __len__(self) -> int:
        return len(self.sizes)

    def __getstate__(self) -> dict:  # a file descriptor must not cross a fork / pickle
        state = dict(self.__dict__)
        state["_fd"], state["_pid"] = -1, -1
        return state

    def _file(self) -> int:
        if self._fd < 0 or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path / "examples.bin", os.O_RDONLY), os.getpid()
        return self._fd

    def get(self, i: int, keep_half: bool = False) -> Data:
        """Example ``i`` (0 <= i < len); ``keep_half``: see :func:`decode_example`."""
        if not 0 <= i < len(self):
            raise IndexError(f"{self.path}: example {i} of {len(self)}")
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        buf = bytearray(end - start)
        if os.preadv(self._file(), [buf], start) != len(buf):
            raise DatasetError(f"{self.path}: example {i} is truncated; delete the store to rebuild")
        return decode_example(buf, keep_half)

    def close(self) -> None:
        """Close this process's file descriptor (reopened on the next read)."""
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._fd, self._pid = -1, -1


def build_store(path: str | os.PathLike, records: Iterable[Any], to_data: Callable[[Any], Data],
                size_of: Callable[[Data], int], meta: dict[str, Any], what: str = "",
                accumulators: dict[str, Any] | None = None, edge_float16: bool = True) -> ExampleStore:
    """Consume ``records`` once, write ``to_data(record)`` of each, return the store at ``path``.

    A record that is a :class:`DatasetError` (a loader reporting an unreadable record), whose reading raises one
    (``next(records)``; the reader goes on with the next record, as
    :class:`~pa_geo.formats.atom3d_loader.Atom3DRecords` does) or whose ``to_data`` raises one is skipped and counted
    (``meta.json``: ``skipped``, ``skipped_reasons``; one log line). Each accumulator
    (``update(record)`` / ``result()``) sees every built record; its result goes into ``meta[name]``. The folder
    appears atomically; if another process built the same store meanwhile, that one is kept.
    """
    path = Path(path)
    accumulators = dict(accumulators or {})
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    skipped: list[str] = []
    offsets, sizes = [0], []
    try:
        with open(tmp / "examples.bin", "wb") as fh:
            items = iter(records)
            while True:
                try:  # a streaming reader may raise DatasetError for one record and go on with the next
                    record = next(items)
                    if isinstance(record, DatasetError):
                        raise record
                    data = to_data(record)
                except StopIteration:
                    break
                except DatasetError as err:
                    skipped.append(" ".join(str(err).split()))
                    continue
                blob = encode_example(data, edge_float16)
                fh.write(blob)
                offsets.append(offsets[-1] + len(blob))
                sizes.append(int(size_of(data)))
                for acc in accumulators.values():
                    acc.update(record)
        if skipped:
            LOG.warning("%s: skipped %d of %d records; first: %s", what or path, len(skipped),
                        len(skipped) + len(sizes), skipped[0])
            if not sizes:
                raise DatasetError(f"{what or path}: no usable record ({len(skipped)} skipped; first: {skipped[0]})")
        info = {**meta, "format": FORMAT_VERSION, "num_examples": len(sizes), "skipped": len(skipped),
                "skipped_reasons": skipped[:20], "edge_float16": edge_float16,
                **{name: acc.result() for name, acc in accumulators.items() if sizes}}
        np.save(tmp / "index.npy", np.asarray(offsets, np.int64))
        np.save(tmp / "sizes.npy", np.asarray(sizes, np.int64))
        (tmp / "meta.json").write_text(json.dumps(info, indent=1, default=str) + "\n")
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / "meta.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExampleStore(path)


class StoredDataset(Dataset):
    """A PyG ``Dataset`` over an :class:`ExampleStore`: ``ds[i]`` or ``ds[(i, epoch)]`` reads example ``i``, runs
    ``prepare(data, i, epoch)`` (the task kind's epoch hook; ``epoch`` is None unless ``epoch_aware``) then
    ``transform`` (e.g. attaching cached embeddings). Memory: one example per read. ``keep_half``: float16-stored
    fields (``edge_attr``) stay float16 (half the bytes from a DataLoader worker; the model converts them)."""

    def __init__(self, store: ExampleStore, prepare: Callable[[Data, int, int | None], Data] | None = None,
                 transform: Callable[[Data], Data] | None = None, epoch_aware: bool = False,
                 keep_half: bool = False) -> None:
        self.store, self.prepare, self.epoch_aware, self.keep_half = store, prepare, epoch_aware, keep_half
        super().__init__(None, transform=transform, log=False)

    @property
    def sizes(self) -> np.ndarray:
        """Nodes of every example (all its graphs), int64 ``[len]``."""
        return self.store.sizes

    @property
    def meta(self) -> dict[str, Any]:
        """The store's ``meta.json``."""
        return self.store.meta

    def len(self) -> int:
        return len(self.store)

    def get(self, idx: int) -> Data:
        return self.store.get(int(idx))

    def __getitem__(self, key: Any) -> Data:  # type: ignore[override]
        index, epoch = (int(key[0]), key[1]) if isinstance(key, tuple) else (int(key), None)
        data = self.store.get(index, self.keep_half)
        if self.prepare is not None:
            data = self.prepare(data, index, epoch if self.epoch_aware else None)
        return data if self.transform is None else self.transform(data)
