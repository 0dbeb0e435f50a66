"""The default optimisation recipe: AdamW, linear warm-up, cosine decay (per optimizer step)."""
from __future__ import annotations

import math

import torch


def warmup_cosine_lambda(total_steps: int, warmup_steps: int, min_lr_ratio: float = 0.0):
    """LR multiplier of step ``s``: ``s / warmup`` during warm-up, then cosine from 1 down to ``min_lr_ratio``."""
    total = max(1, int(total_steps))
    warmup = max(0, min(int(warmup_steps), total - 1))

    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


def adamw_warmup_cosine(params, lr: float, weight_decay: float, total_steps: int, warmup_steps: int,
                        min_lr_ratio: float = 0.0) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``params`` (biases / norms without weight decay) and its warm-up + cosine ``LambdaLR``."""
    decay, no_decay = [], []
    for p in params:
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine_lambda(total_steps, warmup_steps, min_lr_ratio))
    return opt, sched
