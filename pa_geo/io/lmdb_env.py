"""Open LMDB files without ever crashing the process, and turn every ``lmdb`` error into one line.

LMDB memory-maps ``data.mdb``. A page past the end of a truncated file (a full disk, an interrupted copy) is not
an error LMDB can return: touching it is a SIGBUS that kills the process with nothing printed. So before mapping,
:func:`open_env` checks the file against what LMDB itself records in its meta pages (:mod:`pa_geo.io.lmdb_pages`),
and every ``lmdb.Error`` (``MDB_INVALID``, ``MDB_CORRUPTED``, ``MDB_PAGE_NOTFOUND``, permission denied, read-only
file system, a path that is a file) becomes one line naming the store, the reason and what to do.

Not covered: bytes flipped inside tree pages of a file of the right size (bit rot). LMDB may then abort the
process on an internal assertion; ``pa-geo cache verify`` reads such files page by page without LMDB.
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import lmdb

from pa_geo.errors import PaGeoError
from pa_geo.io.lmdb_pages import LmdbFileDamaged, check_file_size, check_tree

_ACCESS_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def is_access_error(err: BaseException) -> bool:
    """True for a refusal to read or write (permission denied, read-only file system) from lmdb or the OS."""
    if isinstance(err, OSError):
        return err.errno in _ACCESS_ERRNOS
    if isinstance(err, lmdb.ReadonlyError):
        return True
    text = str(err)
    return any(os.strerror(code) in text for code in _ACCESS_ERRNOS)


def describe(err: BaseException) -> tuple[str, str]:
    """``(kind, reason)`` of an lmdb / OS error: kind is ``"damaged"``, ``"access"``, ``"path"``, ``"full"`` or
    ``"other"``; reason is one line (with LMDB's own code name where it has one)."""
    text = " ".join(str(err).split())
    if isinstance(err, LmdbFileDamaged):
        return "damaged", text
    if isinstance(err, (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError, lmdb.PanicError,
                        lmdb.VersionMismatchError, lmdb.BadValsizeError)):
        return "damaged", f"LMDB reports {text}"  # py-lmdb's text names the code, e.g. MDB_CORRUPTED
    if is_access_error(err):
        return "access", f"permission denied or read-only file system ({text})"
    if isinstance(err, (lmdb.DiskError, lmdb.MapFullError)) or os.strerror(errno.ENOSPC) in text:
        return "full", f"no space left ({text})"
    if any(os.strerror(code) in text for code in (errno.ENOTDIR, errno.ENOENT, errno.EISDIR)) or isinstance(
            err, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return "path", text
    return "other", f"{type(err).__name__}: {text}"


@dataclass(frozen=True)
class LmdbAdvice:
    """What a store's errors say: ``what`` it is ("embedding cache", "ATOM3D LMDB"), the ``error`` class to raise,
    and what to do when it is ``damaged`` or not writable/readable (``access``)."""

    what: str
    error: type[PaGeoError]
    damaged: str
    access: str = "check its permissions, or use a copy in a writable directory"


def one_line(path: str | os.PathLike, err: BaseException, advice: LmdbAdvice) -> PaGeoError:
    """The :class:`PaGeoError` (``advice.error``) for ``err`` raised on the LMDB at ``path``: one line naming the
    store, the reason and what to do; its ``kind`` and ``reason`` attributes are :func:`describe`'s."""
    kind, reason = describe(err)
    todo = {"damaged": advice.damaged, "access": advice.access,
            "full": "free disk space (or use another directory) and run it again"}.get(kind)
    line = f"{path}: {advice.what} {'is damaged' if kind == 'damaged' else 'cannot be used'}: {reason}"
    exc = advice.error(f"{line}; {todo}" if todo else line)
    exc.kind, exc.reason = kind, reason  # type: ignore[attr-defined] - lets a caller fall back on "access"
    return exc


@contextmanager
def lmdb_errors(path: str | os.PathLike, advice: LmdbAdvice) -> Iterator[None]:
    """Re-raise any ``lmdb.Error`` / :class:`LmdbFileDamaged` inside the block as one line (see :func:`one_line`)."""
    try:
        yield
    except (lmdb.Error, LmdbFileDamaged) as err:
        raise one_line(path, err, advice) from None


def open_env(path: str | os.PathLike, advice: LmdbAdvice, readonly: bool = True, deep: bool = False,
             **kwargs) -> lmdb.Environment:
    """``lmdb.open`` after checking the data file against the size LMDB records (never a SIGBUS later).

    ``path`` is an LMDB directory or a single data file (``subdir`` follows). ``deep`` also reads every tree page
    first (:func:`~pa_geo.io.lmdb_pages.check_tree`), so damaged pages are one line here instead of an LMDB
    assertion abort later: for files read once (datasets), too slow for a cache opened by every worker.
    Read-only opens are lock-free (``lock=False``) unless ``kwargs`` say otherwise; a writable open of a
    directory without a data file creates a new environment. Every failure is one line (``advice.error``) naming
    the store, the reason and what to do.
    """
    p = Path(path)
    subdir = kwargs.pop("subdir", p.is_dir() or not p.exists() and not readonly)
    f = p / "data.mdb" if subdir else p
    if readonly and not f.is_file():
        raise advice.error(f"{p}: no {advice.what} here (no {'data.mdb' if subdir else 'LMDB file'})")
    try:
        if f.is_file() and (readonly or f.stat().st_size > 0):
            head = check_file_size(f)
            if deep:
                check_tree(f, head)
        if readonly:
            kwargs.setdefault("lock", False)
        return lmdb.open(str(p), subdir=subdir, readonly=readonly, **kwargs)
    except (lmdb.Error, LmdbFileDamaged, OSError) as err:
        raise one_line(p, err, advice) from None
