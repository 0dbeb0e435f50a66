"""Suite-wide settings: one torch thread per test process (tests use small tensors, where OpenMP start-up and
spin-waiting cost more than a second core gives; subprocess tests set their own)."""
import torch

torch.set_num_threads(1)
