"""tests/backbones: one intra-op torch thread while a module runs (restored after it)."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """One intra-op thread while a module runs: on the shared 2-core box, 2 threads under load are ~5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
