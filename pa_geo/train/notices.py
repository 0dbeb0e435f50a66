"""Third-party notices the ``pa-geo`` program and the demo's runs leave out of their output, each matched by its
exact message: none of them is about the run's data or settings, and printed once per run they bury the program's
own progress lines."""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Iterator

KNOWN_WARNINGS = (
    "Metric `SpearmanCorrcoef` will save all targets",  # torchmetrics keeps Spearman's inputs, by design
    "`isinstance\\(treespec, LeafSpec\\)` is deprecated",  # Lightning 2.6's own call, deprecated by torch 2.13
    "Sparse CSR tensor support is in beta",  # torch, from PyG's sparse helpers
    "The number of training batches \\(\\d+\\) is smaller than the logging interval",  # a short (quick) run
)
LIGHTNING_TIP = "💡 Tip: For seamless cloud"  # Lightning's advertisement of its logging service
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")


class _DropTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(LIGHTNING_TIP)


def silence_known_notices() -> None:
    """Ignore :data:`KNOWN_WARNINGS` and drop Lightning's tip line in this process (idempotent)."""
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(f"{name}.utilities.rank_zero")
        if not any(isinstance(f, _DropTip) for f in logger.filters):
            logger.addFilter(_DropTip())


@contextmanager
def lightning_warnings_only() -> Iterator[None]:
    """Lightning's informational lines (devices, seeds) left out while the block runs: for commands whose output is
    their own (``pa-geo predict --input``, the demo's set-up)."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
