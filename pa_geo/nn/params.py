"""Parameter accounting: how many weights a model trains, per top-level submodule, next to the frozen backbones."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

# Parameters of ESM-1b (fair-esm ``esm1b_t33_650M_UR50S``: 33 layers, dim 1280, 20 heads, FFN 5120, 1024 positions,
# incl. the 661-weight contact-regression head), counted with sum(p.numel()) over
# ``esm.model.esm1.ProteinBertModel`` built on the meta device with fair-esm 2.0.0 (Rives et al., PNAS 2021: "650M").
ESM1B_NUM_PARAMS = 652_356_534


@dataclass(frozen=True)
class ParamRow:
    """One line of a :class:`ParamReport`: a top-level submodule (or a frozen external reference)."""

    name: str
    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen


@dataclass(frozen=True)
class ParamReport:
    """Per-submodule trainable / frozen parameter counts; ``references`` are frozen models outside the module."""

    rows: tuple[ParamRow, ...]
    references: tuple[ParamRow, ...] = field(default=())

    @property
    def trainable(self) -> int:
        """Trainable parameters of the module."""
        return sum(r.trainable for r in self.rows)

    @property
    def frozen(self) -> int:
        """Frozen parameters of the module plus the frozen references."""
        return sum(r.frozen for r in self.rows) + sum(r.frozen for r in self.references)

    @property
    def total(self) -> int:
        return self.trainable + self.frozen

    def fraction_of(self, n_params: int) -> float:
        """Trainable parameters as a fraction of ``n_params`` (e.g. ``ESM1B_NUM_PARAMS``)."""
        if n_params <= 0:
            raise ValueError(f"fraction_of: n_params must be positive, got {n_params}")
        return self.trainable / n_params

    def __str__(self) -> str:
        lines = [("module", "trainable", "frozen"), *((r.name, f"{r.trainable:,}", f"{r.frozen:,}")
                                                     for r in (*self.rows, *self.references))]
        lines.append(("total", f"{self.trainable:,}", f"{self.frozen:,}"))
        widths = [max(len(line[i]) for line in lines) for i in range(3)]
        fmt = [f"{c:<{widths[0]}}  {t:>{widths[1]}}  {f:>{widths[2]}}" for c, t, f in lines]
        rule = "-" * len(fmt[0])
        out = [fmt[0], rule, *fmt[1:-1], rule, fmt[-1]]
        if self.total:
            out.append(f"trainable: {self.trainable / self.total:.2%} of all {self.total:,} parameters")
        return "\n".join(out)


def parameter_report(module: nn.Module, frozen_reference: dict[str, int] | None = None) -> ParamReport:
    """Count ``module``'s parameters per top-level child (parameters registered directly on ``module`` go to a row
    named ``"(self)"``); shared parameters are counted once. ``frozen_reference``: name -> parameter count of frozen
    models that are not part of ``module`` (e.g. ``{"esm1b (frozen)": ESM1B_NUM_PARAMS}``)."""
    seen: set[int] = set()

    def count(params) -> tuple[int, int]:
        trainable = frozen = 0
        for p in params:
            if id(p) in seen:
                continue
            seen.add(id(p))
            if p.requires_grad:
                trainable += p.numel()
            else:
                frozen += p.numel()
        return trainable, frozen

    rows = []
    own = count(module.parameters(recurse=False))
    if any(own):
        rows.append(ParamRow("(self)", *own))
    for name, child in module.named_children():
        rows.append(ParamRow(name, *count(child.parameters())))
    refs = []
    for name, n in (frozen_reference or {}).items():
        if n < 0:
            raise ValueError(f"parameter_report: frozen reference {name!r} has a negative count {n}")
        refs.append(ParamRow(name, 0, int(n)))
    return ParamReport(tuple(rows), tuple(refs))
