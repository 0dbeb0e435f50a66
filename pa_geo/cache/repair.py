"""How much of a damaged embedding store can still be read, and a store rebuilt from exactly that.

:func:`verify_store` reads every entry it can reach and checks each value's checksum; :func:`repair_store` copies
every entry that passes into a fresh store and atomically replaces the old data file with it, so a damaged cache
loses only what was damaged (the next ``pa-geo embed`` recomputes the rest).

Both read the data file page by page without LMDB (:func:`pa_geo.io.lmdb_pages.salvage_entries`): LMDB faults on a
truncated file and aborts on some damaged pages, while this walk only counts a missing or damaged tree page (and
loses that page's subtree) and goes on. A store that verifies clean is one LMDB reads without trouble.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pa_geo.cache.store import META_KEY, CorruptEntry, EmbeddingStore, StoreMeta, check_entry
from pa_geo.errors import CacheError
from pa_geo.io.lmdb_pages import Salvage, salvage_entries, salvage_header, scan_leaf_pages, truncation

_COPY_CHUNK = 256
_SHOWN = 5


@dataclass
class StoreReport:
    """What :func:`verify_store` found in one store (``<cache>/<backbone>``).

    ``readable`` entries pass their checksum; ``corrupt`` were found but fail it (or their value pages are gone);
    ``recorded`` is the entry count LMDB's meta page records (metadata key included), so ``lost`` = entries under
    tree pages that could not be read; ``bad_pages`` = such pages; ``problem`` = what is wrong with the file.
    """

    path: Path
    readable: int = 0
    corrupt: int = 0
    bad_pages: int = 0
    recorded: int | None = None
    meta: StoreMeta | None = None
    problem: str | None = None
    corrupt_keys: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Entries LMDB records that the walk never reached (0 when the count is unknown)."""
        if self.recorded is None:
            return 0
        return max(0, self.recorded - self.readable - self.corrupt - (self.meta is not None))

    @property
    def intact(self) -> bool:
        """True when every recorded entry was read back and passed its checksum."""
        return self.problem is None and not self.corrupt and not self.bad_pages and not self.lost


def store_paths(path: str | os.PathLike) -> list[Path]:
    """``path`` itself when it is a store (holds ``data.mdb``), else the stores directly under it (a cache root)."""
    p = Path(path)
    if not p.exists():
        raise CacheError(f"{p}: no such cache directory")
    if not p.is_dir():
        raise CacheError(f"{p}: is a file, not a cache directory (pass the --cache directory or one store in it)")
    if (p / "data.mdb").is_file():
        return [p]
    stores = sorted(d for d in p.iterdir() if (d / "data.mdb").is_file())
    if not stores:
        raise CacheError(f"{p}: no embedding store here (no data.mdb in it or in its sub-directories)")
    return stores


def _scan(store: Path, sink=None) -> StoreReport:
    """Verify every entry of ``store``; ``sink(key, value)`` receives each good one once (metadata included).

    The live tree is read first; when pages of it are missing or damaged, every other leaf page of the file is
    read too: entries are content-addressed and checksummed, so a copy found in a page cut off from the tree, or
    an older copy left in a free page, is still exactly the embedding its key names.
    """
    report = StoreReport(store)
    try:
        head, report.problem = salvage_header(store)
    except OSError as err:
        report.problem = f"cannot read: {err.strerror or err}"
        return report
    report.recorded = head.entries if head.entries >= 0 else None
    report.problem = report.problem or truncation(store, head)
    salvage = Salvage()
    good: set[bytes] = set()
    bad: set[bytes] = set()
    metas: list[StoreMeta] = []

    def take(key: bytes, value: bytes | None, live: bool = True) -> None:
        if key in good:
            return
        try:
            if value is None:
                raise CorruptEntry("value pages unreadable")
            if key == META_KEY:
                metas.append(StoreMeta.from_json(value))
                return
            check_entry(value)
        except (CorruptEntry, ValueError, TypeError):
            if live:  # an old copy that fails is just an overwritten free page, not a damaged entry
                bad.add(key)
            return
        good.add(key)
        bad.discard(key)
        if sink is not None:
            sink(key, value)

    for key, value in salvage_entries(store, head, salvage):
        take(key, value)
    if salvage.bad_pages or report.problem:
        for key, value in scan_leaf_pages(store, head, salvage.visited):
            take(key, value, live=False)
    if metas:  # the live copy comes first; an older one can only lack layers added since
        report.meta = max(metas, key=lambda m: len(m.dims)) if salvage.bad_pages else metas[0]
        if sink is not None:
            sink(META_KEY, report.meta.to_json())
    report.readable, report.corrupt = len(good), len(bad)
    report.corrupt_keys = sorted(k.hex()[:16] for k in bad)[:_SHOWN]
    report.bad_pages = salvage.bad_pages
    if salvage.reasons and report.problem is None:
        report.problem = "; ".join(salvage.reasons)
    return report


def verify_store(store: str | os.PathLike) -> StoreReport:
    """Read and check every entry of one store (``<cache>/<backbone>``); never raises for a damaged file."""
    return _scan(Path(store))


def repair_store(store: str | os.PathLike) -> StoreReport:
    """Copy every readable, checksum-valid entry of ``store`` into a fresh store and atomically replace the old
    data file with it (``os.replace``); returns what was found (``readable`` entries were kept).

    Run it while nothing else uses the cache. Damaged meta pages are worked around (:func:`salvage_header`);
    a file with nothing readable is left alone and :class:`CacheError` says to delete the store.
    """
    store = Path(store)
    fresh = store / "repair.tmp"
    try:
        if fresh.exists():
            shutil.rmtree(fresh)
        with EmbeddingStore(fresh, readonly=False) as out:
            buf: list[tuple[bytes, bytes]] = []

            def sink(key: bytes, value: bytes) -> None:
                buf.append((key, value))
                if len(buf) >= _COPY_CHUNK:
                    out.put_raw_many(buf)
                    buf.clear()

            report = _scan(store, sink)
            if report.meta is None and not report.readable:  # nothing of a pa_geo store: leave the file alone
                raise CacheError(f"{store}: not repairable, nothing readable ({report.problem}); delete the "
                                 f"directory and embed again")
            if buf:
                out.put_raw_many(buf)
        os.replace(fresh / "data.mdb", store / "data.mdb")
        (store / "lock.mdb").unlink(missing_ok=True)  # described the old file; the next open recreates it
    except OSError as err:
        raise CacheError(f"{store}: cannot repair in place ({err.strerror or err}); make the directory "
                         f"writable") from None
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return report
