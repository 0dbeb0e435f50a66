"""The restricted unpickler: numpy records load (numpy 1.x and 2.x global names), anything else is refused unrun."""
from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest

from pa_geo.formats.safe_pickle import safe_loads
from pa_geo.errors import DatasetError


class _SystemCall:
    """Pickles to ``os.system(<command>)``: the classic malicious pickle."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Popen:
    def __reduce__(self):
        return (subprocess.Popen, (["true"],))


def _tape_record() -> dict:
    return {"primary": "MKTAYIAK", "protein_length": 8, "id": b"rec1",
            "log_fluorescence": np.array([3.25], dtype=np.float32),
            "ss3": np.array([0, 1, 2, 2, 1, 0, 0, 2], dtype=np.int64),
            "valid_mask": np.array([True] * 7 + [False]), "tertiary": np.arange(24, dtype=np.float64).reshape(8, 3),
            "scalar": np.float64(2.5), "nested": [1, 2.0, ("a", {"b": {1, 2}})]}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_records_round_trip(protocol: int) -> None:
    rec = _tape_record()
    out = safe_loads(pickle.dumps(rec, protocol=protocol), "mem[0]")
    assert out["primary"] == "MKTAYIAK" and out["id"] == b"rec1" and out["nested"] == rec["nested"]
    for key in ("log_fluorescence", "ss3", "valid_mask", "tertiary"):
        assert out[key].dtype == rec[key].dtype
        np.testing.assert_array_equal(out[key], rec[key])
    assert out["scalar"] == 2.5 and isinstance(out["scalar"], np.float64)


def test_numpy1_global_names_are_accepted() -> None:
    # Releases were pickled under numpy 1.x, whose arrays name numpy.core.multiarray (protocol 2: text GLOBALs).
    raw = pickle.dumps(_tape_record(), protocol=2)
    assert b"numpy._core.multiarray" in raw
    legacy = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    out = safe_loads(legacy, "legacy[0]")
    np.testing.assert_array_equal(out["ss3"], _tape_record()["ss3"])


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_os_system_pickle_is_refused_and_never_runs(tmp_path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"primary": _SystemCall(f"touch {marker}")}, protocol=protocol)
    with pytest.raises(DatasetError) as err:
        safe_loads(payload, "evil.lmdb[3]")
    msg = str(err.value)
    assert "\n" not in msg and "evil.lmdb[3]" in msg
    assert ("posix.system" in msg) or ("os.system" in msg) or ("nt.system" in msg)
    assert not marker.exists()


def test_other_callables_are_refused() -> None:
    with pytest.raises(DatasetError, match="subprocess.Popen"):
        safe_loads(pickle.dumps(_Popen()), "x")
    with pytest.raises(DatasetError, match="builtins.eval"):
        safe_loads(b"cbuiltins\neval\n(S'1+1'\ntR.", "x")
    with pytest.raises(DatasetError, match="builtins.getattr"):
        safe_loads(b"cbuiltins\ngetattr\n(cbuiltins\nstr\nS'join'\ntR.", "x")


def test_corrupt_pickle_is_a_dataset_error() -> None:
    raw = pickle.dumps(_tape_record())
    with pytest.raises(DatasetError, match=r"^truncated\[1\]: not a readable pickle record"):
        safe_loads(raw[: len(raw) // 2], "truncated[1]")
