"""Suite-wide settings: one torch thread per test process (tests use small tensors, where OpenMP start-up and
spin-waiting cost more than a second core gives; subprocess tests set their own). Tests marked ``cuda`` are skipped
on machines without a CUDA GPU (CI has none; run them with ``pytest -m cuda`` on a GPU machine)."""
import pytest
import torch

torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
