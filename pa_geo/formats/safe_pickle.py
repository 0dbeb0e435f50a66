"""A restricted unpickler for the pickle-serialized records that TAPE / PEER LMDBs ship.

Those records are plain dicts of str / int / float / numpy arrays, pickled under numpy 1.x (globals under
``numpy.core``) or numpy 2.x (``numpy._core``). :class:`RecordUnpickler` resolves only those globals; anything else
(``os.system``, ``builtins.eval``, ``subprocess.Popen``, arbitrary classes) is refused with a one-line
:class:`~pa_geo.errors.DatasetError` before it is ever called.
"""
from __future__ import annotations

import builtins
import codecs
import collections
import io
import pickle
from typing import Any

import numpy as np

from pa_geo.errors import DatasetError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

_BUILTINS = ("str", "int", "float", "bool", "complex", "list", "dict", "tuple", "set", "frozenset",
             "bytes", "bytearray")

# (module, name) -> object. numpy 1.x pickles name ``numpy.core.multiarray``; numpy 2.x ``numpy._core.multiarray``.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {("builtins", n): getattr(builtins, n) for n in _BUILTINS}
ALLOWED_GLOBALS.update({("__builtin__", n): getattr(builtins, n) for n in _BUILTINS})  # protocol-2 py2 names
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED_GLOBALS[(_mod, "_reconstruct")] = _multiarray._reconstruct
    ALLOWED_GLOBALS[(_mod, "scalar")] = _multiarray.scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol-5 arrays: _frombuffer(bytes, dtype, shape)
    ALLOWED_GLOBALS[(_mod, "_frombuffer")] = _numeric._frombuffer
ALLOWED_GLOBALS.update({
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "bool_"): np.bool_,
    # Python-3 pickles of bytes at protocol <= 2 go through _codecs.encode(str, "latin1"): a pure function.
    ("_codecs", "encode"): codecs.encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
})
# numpy scalar types (numpy.float32, numpy.int64, ...) appear as dtype arguments in some pickles.
for _name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "str_", "bytes_"):
    ALLOWED_GLOBALS[("numpy", _name)] = getattr(np, _name)


class RecordUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`.

    ``source`` names the file / record in error messages.
    """

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - pickle protocol
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DatasetError(f"{self.source}: refused to unpickle global {module}.{name} "
                               "(only numpy arrays and plain Python values are allowed)") from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 - pickle protocol
        raise DatasetError(f"{self.source}: refused to unpickle a persistent id")


def safe_loads(data: bytes, source: str) -> Any:
    """Unpickle ``data`` with :class:`RecordUnpickler`; any failure is a one-line ``DatasetError`` naming ``source``."""
    try:
        return RecordUnpickler(io.BytesIO(data), source).load()
    except DatasetError:
        raise
    except Exception as err:  # truncated / corrupt pickles raise many types
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise DatasetError(f"{source}: not a readable pickle record ({reason})") from None
