"""The on-disk embedding store: one LMDB environment per backbone under a cache root.

Layout: ``<cache root>/<backbone name>/{data.mdb,lock.mdb}``. Keys are the 32-byte digests of
:mod:`pa_geo.cache.keys`; one more key, ``META_KEY``, holds JSON metadata (backbone id, level, dims per layer,
default dtype) so a reader never needs to load the model. A value is a 20-byte header followed by the row-major
payload::

    magic b"PGEM" | version u8 | dtype code u8 | reserved u16 | rows u32 | cols u32 | crc32 u32

The crc32 covers the first 16 header bytes and the payload, so a torn or bit-flipped entry is detected
(:class:`CorruptEntry`) instead of being used. Writers commit one LMDB write transaction per batch (atomic:
a killed process leaves the last committed state) and double the map size on ``MapFullError``; several shard
processes may write one store at once (LMDB's writer lock serialises their commits). Readers open read-only and
lock-free, so any number of DDP ranks / DataLoader workers can share one store; being lock-free they are meant for
a store nobody is writing (embed first, then train). Should a reader still race a writer, a torn value fails its
checksum and is reported, never used.

Damage and access never crash or print a traceback: the data file is checked against the size LMDB records before
it is mapped (:mod:`pa_geo.io.lmdb_env`), every ``lmdb`` error becomes one :class:`CacheError` line that names the
store and says what to do (``pa-geo cache repair``), and a store in a directory this process cannot write is opened
read-only: everything that only reads works, the first write is refused in one line.
"""
from __future__ import annotations

import json
import os
import re
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Literal, Sequence

import lmdb
import numpy as np
import torch

from pa_geo.errors import CacheError
from pa_geo.io.lmdb_env import LmdbAdvice, lmdb_errors, open_env

META_KEY = b"__pa_geo_meta__"
STORE_FORMAT = 1
DEFAULT_MAP_SIZE = 64 << 20  # 64 MiB to start; doubled whenever a commit does not fit
Dtype = Literal["fp16", "fp32"]

_HEADER = struct.Struct("<4sBBHIII")
_MAGIC = b"PGEM"
_CODES: dict[str, tuple[int, np.dtype]] = {"fp16": (1, np.dtype("<f2")), "fp32": (2, np.dtype("<f4"))}
_BY_CODE = {code: (name, dt) for name, (code, dt) in _CODES.items()}
_FP16_MAX = float(np.finfo(np.float16).max)


class CorruptEntry(CacheError):
    """A stored value whose header or checksum does not match: never used, recomputed by the runner."""


def store_dirname(backbone: str) -> str:
    """Directory name of a backbone's store inside a cache root (``esm1b`` -> ``esm1b``; unsafe characters -> ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone).strip(".") or "backbone"


def encode_entry(emb: torch.Tensor, dtype: Dtype = "fp16") -> bytes:
    """Serialise one embedding ``[L, D]`` (any float dtype) as header + payload.

    fp16 is used unless a value would overflow it (|x| > 65504), in which case that entry is stored as fp32.
    """
    if emb.ndim != 2:
        raise ValueError(f"embedding must be [L, D], got shape {tuple(emb.shape)}")
    arr = emb.detach().to("cpu", torch.float32).contiguous().numpy()
    if dtype == "fp16" and arr.size and float(np.abs(arr).max()) > _FP16_MAX:
        dtype = "fp32"
    code, np_dtype = _CODES[dtype]
    payload = arr.astype(np_dtype, copy=False).tobytes()
    head = _HEADER.pack(_MAGIC, STORE_FORMAT, code, 0, arr.shape[0], arr.shape[1], 0)[:16]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


def check_entry(value: bytes, what: str = "entry") -> tuple[np.dtype, int, int]:
    """Verify header and checksum of a stored value: ``(dtype, rows, cols)``, else :class:`CorruptEntry`."""
    if len(value) < _HEADER.size:
        raise CorruptEntry(f"{what}: truncated value ({len(value)} bytes)")
    magic, version, code, _, rows, cols, crc = _HEADER.unpack_from(value)
    if magic != _MAGIC or version != STORE_FORMAT or code not in _BY_CODE:
        raise CorruptEntry(f"{what}: bad header (magic {magic!r}, version {version}, dtype code {code})")
    np_dtype = _BY_CODE[code][1]
    payload = memoryview(value)[_HEADER.size:]
    if len(payload) != rows * cols * np_dtype.itemsize:
        raise CorruptEntry(f"{what}: payload has {len(payload)} bytes, header says {rows}x{cols} {np_dtype}")
    if zlib.crc32(payload, zlib.crc32(value[:16])) != crc:
        raise CorruptEntry(f"{what}: checksum mismatch")
    return np_dtype, rows, cols


def decode_entry(value: bytes, what: str = "entry") -> torch.Tensor:
    """Inverse of :func:`encode_entry`: a float32 ``[L, D]`` tensor. Raises :class:`CorruptEntry` naming ``what``."""
    np_dtype, rows, cols = check_entry(value, what)
    payload = memoryview(value)[_HEADER.size:]
    arr = np.frombuffer(payload, dtype=np_dtype).reshape(rows, cols).astype(np.float32)
    return torch.from_numpy(arr)


def _layer_from_json(key: str) -> int | str:
    return int(key) if re.fullmatch(r"-?\d+", key) else key


@dataclass
class StoreMeta:
    """What a store holds: ``backbone`` (registry name), ``backbone_id`` (name + weights fingerprint), ``level``
    ("sequence" | "structure"), ``dims`` ``{layer: D}`` of every layer ever written, default ``dtype``."""

    backbone: str
    backbone_id: str
    level: str
    dims: dict[int | str, int] = field(default_factory=dict)
    dtype: str = "fp16"
    format: int = STORE_FORMAT

    def to_json(self) -> bytes:
        d = asdict(self)
        d["dims"] = {str(k): int(v) for k, v in self.dims.items()}
        return json.dumps(d, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "StoreMeta":
        d = json.loads(raw)
        d["dims"] = {_layer_from_json(k): int(v) for k, v in d.get("dims", {}).items()}
        return cls(**d)


def lmdb_advice(path: str | Path) -> LmdbAdvice:
    """How errors of the store at ``path`` read: what it is and what to do when it is damaged or not writable."""
    return LmdbAdvice("embedding cache", CacheError,
                      damaged=f"run `pa-geo cache repair {path}` (keeps every readable entry; the next embed "
                              f"recomputes the rest)",
                      access="make it writable, or pass a writable --cache directory")


def _check_root(path: Path) -> None:
    """One line when ``path`` or a parent of it exists but is a file (``--cache`` pointing at a file)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise CacheError(f"{p}: is a file, not a cache directory (--cache takes a directory)")
            return


class _EnvHandle:
    """One LMDB environment per (process, directory), shared by every store object opened on it.

    LMDB forbids opening one environment twice in a process, so readers and writers of the same directory
    share it: a read-only (lock-free) environment is upgraded in place to a writable one when a writer opens it.
    Keyed by pid too, so a forked DataLoader worker opens its own. A writer that may not write the directory
    (permission denied, read-only file system) gets the read-only environment and ``write_refusal`` says why.
    """

    _open: dict[tuple[int, str], "_EnvHandle"] = {}

    def __init__(self, key: tuple[int, str], env: lmdb.Environment, readonly: bool,
                 write_refusal: str | None = None) -> None:
        self.key, self.env, self.readonly, self.refs = key, env, readonly, 0
        self.write_refusal = write_refusal

    @staticmethod
    def _open_env(path: str, readonly: bool, map_size: int) -> tuple[lmdb.Environment, str | None]:
        advice = lmdb_advice(path)
        if readonly:
            return open_env(path, advice, readonly=True, subdir=True, readahead=False), None
        try:
            return open_env(path, advice, readonly=False, subdir=True, map_size=map_size, lock=True,
                            readahead=False), None
        except CacheError as err:
            if getattr(err, "kind", None) != "access" or not (Path(path) / "data.mdb").is_file():
                raise
            return open_env(path, advice, readonly=True, subdir=True, readahead=False), err.reason  # type: ignore

    @classmethod
    def acquire(cls, path: Path, readonly: bool, map_size: int) -> "_EnvHandle":
        key = (os.getpid(), str(path.resolve()))
        for other in [k for k in cls._open if k[0] != key[0]]:
            # inherited through fork (a DataLoader worker of a process that read the cache): unusable here, and
            # py-lmdb refuses to open their files again in this process until they are closed (in this process only)
            cls._open.pop(other).env.close()
        h = cls._open.get(key)
        if h is None:
            env, refusal = cls._open_env(key[1], readonly, map_size)
            h = cls._open[key] = cls(key, env, readonly or refusal is not None, refusal)
        elif h.readonly and not readonly and h.write_refusal is None:
            h.env.close()  # LMDB: one environment per path and process
            try:
                h.env, refusal = cls._open_env(key[1], False, map_size)
            except CacheError:
                h.env = cls._open_env(key[1], True, map_size)[0]  # the readers sharing it keep working
                raise
            h.readonly, h.write_refusal = refusal is not None, refusal
        h.refs += 1
        return h

    def release(self) -> None:
        self.refs -= 1
        if self.refs <= 0:
            self.env.close()
            self._open.pop(self.key, None)


class EmbeddingStore:
    """One backbone's LMDB environment. ``readonly=True`` opens lock-free for concurrent readers.

    Values are ``[L, D]`` float32 tensors on the way in and out (stored as ``dtype``).
    """

    def __init__(self, path: str | Path, readonly: bool = True, dtype: Dtype = "fp16",
                 map_size: int = DEFAULT_MAP_SIZE) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if dtype not in _CODES:
            raise CacheError(f"{self.path}: unknown cache dtype {dtype!r} (use fp16 or fp32)")
        self.dtype: Dtype = dtype
        _check_root(self.path)
        if readonly and not (self.path / "data.mdb").is_file():
            raise CacheError(f"{self.path}: no embedding store here (no data.mdb)")
        if not readonly and not self.path.is_dir():
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise CacheError(f"{self.path}: cannot create the embedding cache ({err.strerror or err}); pass a "
                                 f"writable --cache directory") from None
        self._handle: _EnvHandle | None = _EnvHandle.acquire(self.path, readonly, map_size)

    @property
    def env(self) -> lmdb.Environment:
        """The (process-shared) LMDB environment."""
        if self._handle is None:
            raise CacheError(f"{self.path}: store is closed")
        return self._handle.env

    @classmethod
    def for_backbone(cls, cache_root: str | Path, backbone: str, **kwargs) -> "EmbeddingStore":
        """The store of registry name ``backbone`` under ``cache_root``."""
        return cls(Path(cache_root) / store_dirname(backbone), **kwargs)

    @property
    def writable(self) -> bool:
        """True when writes can succeed: opened for writing in a directory this process may write."""
        return not self.readonly and self._handle is not None and self._handle.write_refusal is None

    def require_writable(self, why: str) -> None:
        """Raise one :class:`CacheError` line (naming ``why`` a write is needed) unless the store is writable."""
        if self.readonly:
            raise CacheError(f"{self.path}: store opened read-only; {why}")
        if self._handle is not None and self._handle.write_refusal is not None:
            raise CacheError(f"{self.path}: embedding cache is not writable here ({self._handle.write_refusal}), "
                             f"and {why}: make it writable, or pass a writable --cache directory")

    # -- transactions that survive another process growing the map -------------------------------------------
    def _read(self, fn):
        with lmdb_errors(self.path, lmdb_advice(self.path)):
            for _ in range(3):
                try:
                    with self.env.begin(write=False) as txn:
                        return fn(txn)
                except lmdb.MapResizedError:
                    self.env.set_mapsize(0)  # adopt the size another process grew the map to
        raise CacheError(f"{self.path}: map keeps being resized while reading")

    def _write(self, fn) -> None:
        self.require_writable("this operation writes to it")
        with lmdb_errors(self.path, lmdb_advice(self.path)):
            while True:
                try:
                    with self.env.begin(write=True) as txn:
                        fn(txn)
                    return
                except lmdb.MapFullError:
                    self.env.set_mapsize(self.env.info()["map_size"] * 2)
                except lmdb.MapResizedError:
                    self.env.set_mapsize(0)

    # -- metadata ---------------------------------------------------------------------------------------------
    @property
    def meta(self) -> StoreMeta | None:
        """The store's metadata, None for a store nothing was written to yet."""
        raw = self._read(lambda txn: txn.get(META_KEY))
        return None if raw is None else StoreMeta.from_json(raw)

    def register(self, backbone: str, backbone_id: str, level: str, dims: dict[int | str, int]) -> StoreMeta:
        """Record (or check) which weights this store holds and add ``dims`` of new layers (one transaction).

        Raises :class:`CacheError` when the store already holds another backbone id or another dim for a layer.
        """
        current = self.meta  # nothing new to record: no write (so a read-only cache still serves every read)
        if current is not None and current.backbone_id == backbone_id and all(
                current.dims.get(layer) == d for layer, d in dims.items()):
            return current
        out: list[StoreMeta] = []

        def fn(txn) -> None:
            raw = txn.get(META_KEY)
            meta = StoreMeta(backbone, backbone_id, level, {}, self.dtype) if raw is None else StoreMeta.from_json(raw)
            if meta.backbone_id != backbone_id:
                raise CacheError(f"{self.path}: holds embeddings of {meta.backbone_id}, not {backbone_id}; "
                                 f"use another --cache directory for these weights")
            for layer, d in dims.items():
                if meta.dims.get(layer, d) != d:
                    raise CacheError(f"{self.path}: layer {layer} stored with dim {meta.dims[layer]}, now {d}")
                meta.dims[layer] = int(d)
            txn.put(META_KEY, meta.to_json())
            out.append(meta)

        self._write(fn)
        return out[-1]

    # -- entries ----------------------------------------------------------------------------------------------
    def get(self, key: bytes, what: str = "entry") -> torch.Tensor | None:
        """The ``[L, D]`` float32 tensor under ``key``; None when absent; :class:`CorruptEntry` when damaged."""
        raw = self._read(lambda txn: txn.get(key))
        return None if raw is None else decode_entry(raw, what)

    def get_raw_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Raw values of many keys in one read transaction (None for absent ones)."""
        return self._read(lambda txn: [txn.get(k) for k in keys])

    def put_many(self, items: Sequence[tuple[bytes, torch.Tensor]]) -> None:
        """Write ``(key, [L, D] tensor)`` pairs in ONE transaction: all of them are committed or none."""
        encoded = [(k, encode_entry(t, self.dtype)) for k, t in items]
        self.put_raw_many(encoded)

    def put_raw_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Write already encoded values in one transaction (used by merging; values are checked first)."""

        def fn(txn) -> None:
            for k, v in items:
                txn.put(k, v)

        self._write(fn)

    def iter_raw(self, chunk: int = 256) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, raw value)`` entry in key order, metadata excluded; ``chunk`` entries per read transaction."""
        start = b""
        while True:
            def fn(txn, start=start) -> list[tuple[bytes, bytes]]:
                cur = txn.cursor()
                rows: list[tuple[bytes, bytes]] = []
                ok = cur.set_range(start)
                while ok and len(rows) < chunk:
                    k = bytes(cur.key())
                    if k != META_KEY and (not start or k > start):
                        rows.append((k, bytes(cur.value())))
                    ok = cur.next()
                return rows

            rows = self._read(fn)
            yield from rows
            if len(rows) < chunk:
                return
            start = rows[-1][0]

    def __len__(self) -> int:
        n = self._read(lambda txn: txn.stat()["entries"])
        return n - (1 if self.meta is not None else 0)

    def close(self) -> None:
        """Release this store's reference to the shared environment (closed with its last user)."""
        if self._handle is not None:
            self._handle.release()
            self._handle = None

    def __enter__(self) -> "EmbeddingStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
