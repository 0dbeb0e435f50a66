"""Read a structure/sequence file into text and tell its format, refusing what is not one (one-line errors).

Everything that can go wrong before a parser sees the text is caught here: a missing path, a directory, an empty
file, a truncated or corrupt gzip, binary bytes, an HTML page saved in place of a download, a FASTA file handed to
the structure reader.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path

from pa_geo.errors import StructureError

GZIP_MAGIC = b"\x1f\x8b"
PDB_SUFFIXES = (".pdb", ".ent", ".pdb1", ".brk")
CIF_SUFFIXES = (".cif", ".mmcif")
_HTML = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body)", re.IGNORECASE)
_PDB_RECORD = re.compile(r"^(ATOM  |HETATM)", re.MULTILINE)
# Control bytes other than tab/newline/carriage return/form feed never appear in a PDB, mmCIF or FASTA file.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes.

    Raises :class:`StructureError` for a missing path, a directory, an empty file or a truncated/corrupt gzip.
    """
    p = Path(path)
    if not p.exists():
        raise StructureError(path, "no such file")
    if p.is_dir():
        raise StructureError(path, "is a directory, not a structure file")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise StructureError(path, f"cannot read: {err.strerror or err}") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise StructureError(path, f"truncated or corrupt gzip ({err})") from None
    if not raw.strip():
        raise StructureError(path, "empty file")
    return raw


def bytes_to_text(path: str | os.PathLike, raw: bytes) -> str:
    """Decode a text file (UTF-8, Latin-1 fallback); refuse binary content and HTML pages."""
    head = raw[:65536]
    if _HTML.match(head):
        raise StructureError(path, "is an HTML page, not a structure file (a failed download?)")
    n_control = sum(head.count(bytes([b])) for b in _CONTROL)
    if n_control > 0:
        first = min(i for i in (head.find(bytes([b])) for b in _CONTROL) if i >= 0)
        line = head[:first].count(b"\n") + 1
        raise StructureError(path, f"binary content ({n_control} control bytes in the first {len(head)} bytes, "
                                   f"the first on line {line})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def structure_format(path: str | os.PathLike, text: str) -> str:
    """``"pdb"`` or ``"cif"``: by content (an ``_atom_site`` loop / ATOM-HETATM records), else by the file name
    (``.pdb/.ent/.cif/.mmcif``, optionally ``.gz``).

    Raises :class:`StructureError` for FASTA content or content that is neither format.
    """
    stripped = text.lstrip()
    if stripped.startswith(">"):
        raise StructureError(path, "looks like a FASTA file (starts with '>'): use read_fasta for sequences")
    # Content decides when it is unambiguous (a mmCIF saved as .pdb happens); otherwise the file name.
    if re.search(r"^data_", text, re.MULTILINE) and "_atom_site." in text:
        return "cif"
    if _PDB_RECORD.search(text):
        return "pdb"
    suffix = Path(_strip_gz(str(path))).suffix.lower()
    if suffix in CIF_SUFFIXES:
        return "cif"
    if suffix in PDB_SUFFIXES:
        return "pdb"
    raise StructureError(path, "neither PDB nor mmCIF (no ATOM/HETATM records, no _atom_site loop)")


def protein_id_from_path(path: str | os.PathLike) -> str:
    """File name without ``.gz`` and the structure/sequence suffix, e.g. ``1mr1D.pdb.gz`` -> ``1mr1D``."""
    name = _strip_gz(Path(path).name)
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix.lower() in {s.lstrip(".") for s in PDB_SUFFIXES + CIF_SUFFIXES} | {"fasta", "fa", "faa"}:
        return stem
    return name
