"""LMDB's data file read page by page with ``pread``: nothing is memory-mapped, so no damage can fault.

Used before LMDB maps a file (is every page it can reach inside the file? a truncated file would be a SIGBUS) and
to salvage the entries of a damaged file (LMDB itself aborts the process on some damaged pages: its cursor code
``mdb_cassert``\\ s ``IS_LEAF`` / ``IS_BRANCH``).

On-disk facts (LMDB's ``mdb.c`` as vendored by py-lmdb in ``lib/mdb.c``: ``struct MDB_page``, ``MDB_meta``,
``MDB_db``, ``MDB_node``, ``mdb_env_read_header``, ``mdb_page_get``, ``mdb_node_read``; 64-bit little-endian
build, what py-lmdb ships for x86-64 and aarch64):

* every page starts with a 16-byte header: ``mp_pgno`` u64, ``mp_pad`` u16, ``mp_flags`` u16 (``P_BRANCH`` 0x01,
  ``P_LEAF`` 0x02, ``P_OVERFLOW`` 0x04, ``P_META`` 0x08, ``P_LEAF2`` 0x20), then ``mp_lower`` / ``mp_upper`` u16
  (an overflow page has ``mp_pages`` u32 there). Branch and leaf pages continue with ``NUMKEYS = (mp_lower - 16)
  / 2`` u16 node offsets; a node is ``mn_lo``, ``mn_hi``, ``mn_flags``, ``mn_ksize`` (u16 each) then the key,
  then (leaf) the value. A branch node's child is ``mn_lo | mn_hi << 16 | mn_flags << 32``; a leaf node's value
  size is ``mn_lo | mn_hi << 16``, and with ``F_BIGDATA`` (0x01) the value is a u64 page number of an overflow
  run of ``(16 - 1 + size) // psize + 1`` pages whose data starts 16 bytes into its first page.
* pages 0 and 1 are meta pages: after the page header, ``mm_magic`` u32 (0xBEEFC0DE), ``mm_version`` u32 (1),
  ``mm_address``, ``mm_mapsize``, ``mm_dbs[2]`` (free DB, main DB; 48 bytes each: ``md_pad`` u32 -- the page size
  ``mm_psize`` for the free DB --, ``md_flags``, ``md_depth`` u16, three page counts, ``md_entries``,
  ``md_root``), ``mm_last_pg``, ``mm_txnid``. LMDB reads meta 0 at offset 0, meta 1 at offset ``mm_psize``, and
  uses the one with the higher txnid.
* ``mdb_page_get`` refuses page numbers above ``mm_last_pg`` (``MDB_PAGE_NOTFOUND``), but the file may end before
  ``(mm_last_pg + 1) * psize`` without damage: pages freed in the commit that allocated them are never written
  (``mdb_page_flush`` skips ``P_LOOSE`` pages). So a short file is damaged only when a page one of the trees
  reaches lies past its end, which :func:`missing_page` decides.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

MDB_MAGIC = 0xBEEFC0DE
MDB_DATA_VERSION = 1
P_BRANCH, P_LEAF, P_OVERFLOW, P_META, P_LEAF2 = 0x01, 0x02, 0x04, 0x08, 0x20
F_BIGDATA, F_SUBDATA = 0x01, 0x02  # leaf node flags: value on overflow pages / value is a sub-database
P_INVALID = (1 << 64) - 1  # root of an empty tree
HEADER_BYTES = 16  # PAGEHDRSZ
_PAGE_HEADER = struct.Struct("<QHHHH")  # mp_pgno, mp_pad, mp_flags, mp_lower, mp_upper
_NODE = struct.Struct("<HHHH")  # mn_lo, mn_hi, mn_flags, mn_ksize (NODESIZE = 8)
_META = struct.Struct("<IIQQ48s48sQQ")  # magic, version, address, mapsize, dbs[0], dbs[1], last_pg, txnid
_DB = struct.Struct("<IHHQQQQQ")  # md_pad, md_flags, md_depth, branch, leaf, overflow pages, entries, root
_META_BYTES = HEADER_BYTES + _META.size


class LmdbFileDamaged(ValueError):
    """An LMDB data file that is not intact (bad meta pages, reachable pages missing); ``str()`` is the reason."""


@dataclass(frozen=True)
class LmdbHeader:
    """What the newest valid meta page of a data file records: ``page_size``, ``last_page`` allocated,
    ``txnid``, ``map_size``, main-DB ``entries``, the file's ``file_size`` now and the ``roots`` of the free and
    the main DB (``P_INVALID`` for an empty tree)."""

    page_size: int
    last_page: int
    txnid: int
    map_size: int
    entries: int
    file_size: int
    roots: tuple[int, int] = (P_INVALID, P_INVALID)

    @property
    def required_bytes(self) -> int:
        """Bytes that hold every page up to the last one LMDB records as allocated."""
        return (self.last_page + 1) * self.page_size

    @property
    def short(self) -> bool:
        """True when the file ends before the last allocated page (damage only if :func:`missing_page` says so)."""
        return self.file_size < self.required_bytes


def data_file(path: str | os.PathLike) -> Path:
    """The ``data.mdb`` of an LMDB directory, or ``path`` itself when it is the (single-file) LMDB."""
    p = Path(path)
    return p / "data.mdb" if p.is_dir() else p


def _meta(buf: bytes, which: int) -> tuple[int, int, int, int, int, tuple[int, int]]:
    if len(buf) < _META_BYTES:
        raise LmdbFileDamaged(f"meta page {which} is cut off ({len(buf)} bytes)")
    flags = _PAGE_HEADER.unpack_from(buf)[2]
    magic, version, _, map_size, free_db, main_db, last_pg, txnid = _META.unpack_from(buf, HEADER_BYTES)
    if not flags & P_META or magic != MDB_MAGIC:
        raise LmdbFileDamaged(f"meta page {which} is not an LMDB meta page (not an LMDB file, or its header is "
                              f"overwritten)")
    if version != MDB_DATA_VERSION:
        raise LmdbFileDamaged(f"meta page {which} has LMDB data version {version}, expected {MDB_DATA_VERSION}")
    free, main = _DB.unpack(free_db), _DB.unpack(main_db)
    return free[0], last_pg, txnid, map_size, main[6], (free[7], main[7])


def read_header(path: str | os.PathLike) -> LmdbHeader:
    """Parse both meta pages the way ``mdb_env_read_header`` does (``path``: an LMDB directory or data file).

    Raises :class:`LmdbFileDamaged` for an empty file, an invalid meta page or an impossible page size;
    ``OSError`` when the file cannot be read.
    """
    f = data_file(path)
    size = f.stat().st_size
    if size == 0:
        raise LmdbFileDamaged("data file is empty (nothing was ever committed, or it was truncated to 0 bytes)")
    with open(f, "rb") as fh:
        psize, last_pg, txnid, map_size, entries, roots = _meta(fh.read(_META_BYTES), 0)
        if psize < 512 or psize > 65536 or psize & (psize - 1):
            raise LmdbFileDamaged(f"meta page 0 records an impossible page size {psize}")
        fh.seek(psize)
        second = _meta(fh.read(_META_BYTES), 1)
    if second[2] > txnid:  # LMDB uses the meta page of the newest transaction
        if second[0] != psize:
            raise LmdbFileDamaged(f"meta pages disagree on the page size ({psize} vs {second[0]})")
        psize, last_pg, txnid, map_size, entries, roots = second
    return LmdbHeader(psize, last_pg, txnid, map_size, entries, size, roots)


def salvage_header(path: str | os.PathLike) -> tuple[LmdbHeader, str | None]:
    """:func:`read_header`, or for damaged meta pages a header good enough to salvage from, with the reason: the
    meta page still valid (its page size tried at 4-64 KiB), else 4 KiB pages and no tree; either way every page
    of the file may be read and the entry count is unknown (``entries`` -1). Raises ``OSError`` only."""
    try:
        return read_header(path), None
    except LmdbFileDamaged as err:
        reason = str(err)
    f = data_file(path)
    size = f.stat().st_size
    with open(f, "rb") as fh:
        for offset in (0, 4096, 8192, 16384, 32768, 65536):
            fh.seek(offset)
            try:
                psize, last_pg, txnid, map_size, entries, roots = _meta(fh.read(_META_BYTES), 0)
            except LmdbFileDamaged:
                continue
            if psize in (4096, 8192, 16384, 32768, 65536) and offset in (0, psize):
                # an older transaction's meta: its tree is a start, but pages and counts have moved on since
                return LmdbHeader(psize, max(last_pg, size // psize - 1), txnid, map_size, -1, size, roots), reason
    return LmdbHeader(4096, max(size // 4096, 1) - 1, 0, 0, -1, size), reason


class BadPage(ValueError):
    """A tree page that is missing or not what its parent says; ``str()`` names it."""


@dataclass
class Node:
    """One node of a branch or leaf page: ``flags``, ``size`` (leaf value size / branch child's low bits),
    ``key``, ``child`` (branch) and where its data starts in the page."""

    flags: int
    size: int
    key: bytes
    child: int
    data_at: int


class PageFile:
    """``pread`` access to the pages of one LMDB data file (``head`` from :func:`read_header`)."""

    def __init__(self, path: str | os.PathLike, head: LmdbHeader) -> None:
        self.head, self.psize = head, head.page_size
        self.pages = head.file_size // head.page_size  # whole pages present
        self._fd = os.open(data_file(path), os.O_RDONLY)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> "PageFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, pgno: int, count: int = 1) -> bytes:
        """Raw bytes of pages ``pgno .. pgno+count-1``; :class:`BadPage` when they are not all in the file."""
        if pgno > self.head.last_page:
            raise BadPage(f"page {pgno} is beyond the last allocated page {self.head.last_page}")
        if pgno + count > self.pages:
            raise BadPage(f"page {max(pgno, self.pages)} is past the end of the file")
        return os.pread(self._fd, count * self.psize, pgno * self.psize)

    def nodes(self, pgno: int) -> tuple[int, list[Node], bytes]:
        """``(kind, nodes, page bytes)`` of branch / leaf page ``pgno`` (kind ``P_BRANCH`` or ``P_LEAF``), checked
        as LMDB's cursor code assumes (a branch has at least 2 keys...); :class:`BadPage` otherwise."""
        page = self.read(pgno)
        own, _, flags, lower, upper = _PAGE_HEADER.unpack_from(page)
        kind = flags & (P_BRANCH | P_LEAF | P_LEAF2 | P_OVERFLOW | P_META)
        if own != pgno or kind not in (P_BRANCH, P_LEAF):
            raise BadPage(f"page {pgno} is not a branch or leaf page (flags {flags:#x}, number {own})")
        if not HEADER_BYTES <= lower <= upper <= self.psize or (lower - HEADER_BYTES) % 2:
            raise BadPage(f"page {pgno} has impossible bounds (lower {lower}, upper {upper})")
        n = (lower - HEADER_BYTES) // 2
        if n == 0 or (kind == P_BRANCH and n < 2):
            raise BadPage(f"page {pgno} has {n} keys")
        out = []
        for i in range(n):
            (off,) = struct.unpack_from("<H", page, HEADER_BYTES + 2 * i)
            if not upper <= off <= self.psize - _NODE.size:
                raise BadPage(f"page {pgno} node {i} lies outside the page")
            lo, hi, nflags, ksize = _NODE.unpack_from(page, off)
            data_at = off + _NODE.size + ksize
            if data_at > self.psize:
                raise BadPage(f"page {pgno} node {i} key runs past the page")
            key = page[off + _NODE.size:data_at]
            out.append(Node(nflags, lo | hi << 16, key, lo | hi << 16 | nflags << 32, data_at))
        return kind, out, page

    def overflow_run(self, page: bytes, node: Node) -> tuple[int, int]:
        """``(first page, page count)`` of the overflow run of an ``F_BIGDATA`` leaf ``node`` of ``page``."""
        if node.data_at + 8 > self.psize:
            raise BadPage(f"overflow page number of key {node.key[:8].hex()} runs past its leaf page")
        return struct.unpack_from("<Q", page, node.data_at)[0], (HEADER_BYTES - 1 + node.size) // self.psize + 1

    def value(self, pgno: int, page: bytes, node: Node) -> bytes:
        """The value of leaf ``node`` of page ``pgno`` (``page``: its bytes), inline or on its overflow run;
        :class:`BadPage` when it cannot be read."""
        if node.flags & F_SUBDATA:
            raise BadPage(f"page {pgno}: key {node.key[:8].hex()} holds a sub-database, not a value")
        if not node.flags & F_BIGDATA:
            if node.data_at + node.size > self.psize:
                raise BadPage(f"page {pgno}: value of key {node.key[:8].hex()} runs past the page")
            return page[node.data_at:node.data_at + node.size]
        first, count = self.overflow_run(page, node)
        run = self.read(first, count)
        own, _, flags, _, _ = _PAGE_HEADER.unpack_from(run)
        if own != first or not flags & P_OVERFLOW:
            raise BadPage(f"page {first} is not the overflow page key {node.key[:8].hex()} points to")
        return run[HEADER_BYTES:HEADER_BYTES + node.size]


def missing_page(path: str | os.PathLike, head: LmdbHeader) -> int | None:
    """The first page one of the trees (free DB, main DB, sub-databases, overflow runs) reaches that lies past the
    end of the file, or None. Pages whose content is damaged are not followed (LMDB refuses them itself)."""
    with PageFile(path, head) as pf:
        todo = [r for r in head.roots if r != P_INVALID]
        seen: set[int] = set()
        while todo:
            pgno = todo.pop()
            if pgno in seen or pgno > head.last_page:
                continue
            if pgno >= pf.pages:
                return pgno
            seen.add(pgno)
            try:
                kind, nodes, page = pf.nodes(pgno)
            except BadPage:
                continue
            for node in nodes:
                if kind == P_BRANCH:
                    todo.append(node.child)
                elif node.flags & F_BIGDATA and node.data_at + 8 <= pf.psize:
                    first, count = pf.overflow_run(page, node)
                    if first <= head.last_page and first + count > pf.pages:
                        return max(first, pf.pages)
                elif node.flags & F_SUBDATA and node.data_at + _DB.size <= pf.psize:
                    todo.append(_DB.unpack_from(page, node.data_at)[7])
    return None


def truncation(path: str | os.PathLike, head: LmdbHeader) -> str | None:
    """One line when pages LMDB can reach lie past the end of the file, else None."""
    if not head.short:
        return None
    page = missing_page(path, head)
    if page is None:
        return None
    return (f"data file truncated to {head.file_size} of {head.required_bytes} bytes (page {page} of "
            f"{head.last_page + 1} is in use but missing; an interrupted copy or a full disk?)")


def check_file_size(path: str | os.PathLike) -> LmdbHeader:
    """:func:`read_header`; raises :class:`LmdbFileDamaged` as well when a page LMDB can reach lies past the end
    of the file (a SIGBUS once mapped)."""
    head = read_header(path)
    problem = truncation(path, head)
    if problem:
        raise LmdbFileDamaged(problem)
    return head


def check_tree(path: str | os.PathLike, head: LmdbHeader) -> None:
    """Read every page of the main tree (and check that every overflow run lies inside the file) the way LMDB's
    cursor code assumes it is; :class:`LmdbFileDamaged` naming the first page that is not. Costs one ``pread``
    per tree page (about 0.4 s for 200,000 entries), so readers that open a file once use it."""
    with PageFile(path, head) as pf:
        todo = [head.roots[1]] if head.roots[1] != P_INVALID else []
        seen: set[int] = set()
        while todo:
            pgno = todo.pop()
            try:
                if pgno in seen:
                    raise BadPage(f"page {pgno} is reached twice (a cycle)")
                seen.add(pgno)
                kind, nodes, page = pf.nodes(pgno)
                for node in nodes:
                    if kind == P_BRANCH:
                        todo.append(node.child)
                    elif node.flags & F_BIGDATA:
                        first, count = pf.overflow_run(page, node)
                        if first + count > pf.pages or first < 2:
                            raise BadPage(f"value of key {node.key[:8].hex()} points to pages {first}.."
                                          f"{first + count - 1}, outside the file")
            except BadPage as err:
                raise LmdbFileDamaged(f"damaged page: {err}") from None


@dataclass
class Salvage:
    """What :func:`salvage_entries` could not read: ``bad_pages`` (tree pages missing or damaged, each losing
    its subtree) and the first few ``reasons``."""

    bad_pages: int = 0
    reasons: list[str] = field(default_factory=list)
    visited: set[int] = field(default_factory=set)

    def bad(self, err: BadPage) -> None:
        self.bad_pages += 1
        if len(self.reasons) < 3:
            self.reasons.append(str(err))


def salvage_entries(path: str | os.PathLike, head: LmdbHeader, report: Salvage) -> Iterator[tuple[bytes,
                                                                                              bytes | None]]:
    """Every ``(key, value)`` of the main DB that can still be read, in key order, without LMDB: a damaged or
    missing tree page is counted in ``report`` and its subtree skipped; a value that cannot be read comes as
    ``(key, None)``."""
    with PageFile(path, head) as pf:
        todo = [head.roots[1]] if head.roots[1] != P_INVALID else []
        while todo:
            pgno = todo.pop()
            if pgno in report.visited:
                report.bad(BadPage(f"page {pgno} is reached twice (a cycle)"))
                continue
            report.visited.add(pgno)
            try:
                kind, nodes, page = pf.nodes(pgno)
            except BadPage as err:
                report.bad(err)
                continue
            if kind == P_BRANCH:
                todo.extend(node.child for node in reversed(nodes))
                continue
            yield from _leaf_entries(pf, pgno, page, nodes)


def _leaf_entries(pf: PageFile, pgno: int, page: bytes, nodes: list[Node]) -> Iterator[tuple[bytes, bytes | None]]:
    for node in nodes:
        try:
            value = pf.value(pgno, page, node)
        except BadPage:
            value = None
        yield node.key, value


def scan_leaf_pages(path: str | os.PathLike, head: LmdbHeader, skip: set[int]) -> Iterator[tuple[bytes,
                                                                                              bytes | None]]:
    """``(key, value)`` of every leaf page in the file that is not in ``skip``, whether the tree reaches it or not:
    leaves cut off by a lost branch page, and older copies left in free pages (copy-on-write never overwrites a
    page in place). Only for content whose values verify themselves (checksums): an old copy may be stale."""
    with PageFile(path, head) as pf:
        for pgno in range(2, min(pf.pages, head.last_page + 1)):
            if pgno in skip:
                continue
            try:
                kind, nodes, page = pf.nodes(pgno)
            except BadPage:
                continue
            if kind == P_LEAF:
                yield from _leaf_entries(pf, pgno, page, nodes)
