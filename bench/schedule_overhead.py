"""Cost of OneCycleScheduler per optimizer step, against torch's OneCycleLR stepped by Lightning.

Fits the same small regression three ways in one process (no schedule; OneCycleLR returned from
``configure_optimizers`` with ``interval="step"``; the callback), best of ``--repeats`` each, and
prints one JSON object as the last line: seconds per run, overhead per step in microseconds against
no schedule, the callback's time as a ratio of torch's, and whether the final LRs agree.

    python bench/schedule_overhead.py [--steps 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks import OneCycleScheduler

MAX_LR = 0.01


class Regression(pl.LightningModule):
    def __init__(self, variant: str, total_steps: int) -> None:
        super().__init__()
        self.variant, self.total_steps = variant, total_steps
        self.net = nn.Linear(32, 1)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> object:
        optimizer = torch.optim.SGD(self.parameters(), lr=MAX_LR, momentum=0.9)
        if self.variant != "torch":
            return optimizer
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=MAX_LR, total_steps=self.total_steps
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def run(variant: str, steps: int) -> tuple[float, float]:
    x = torch.randn(steps * 8, 32, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    module = Regression(variant, steps)
    callbacks = [OneCycleScheduler(max_lr=MAX_LR)] if variant == "callback" else []
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(module, loader)
    elapsed = time.perf_counter() - start
    return elapsed, trainer.optimizers[0].param_groups[0]["lr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    seconds, final_lr = {}, {}
    for variant in ("none", "torch", "callback"):
        runs = [run(variant, args.steps) for _ in range(args.repeats)]
        seconds[variant] = min(t for t, _ in runs)
        final_lr[variant] = runs[-1][1]
    per_step_us = {
        v: (seconds[v] - seconds["none"]) / args.steps * 1e6 for v in ("torch", "callback")
    }
    # Lightning steps torch's scheduler after the last optimizer step too, so its final LR is
    # OneCycleLR's value at step `steps`; the callback's is the one used for the last step.
    print(
        json.dumps(
            {
                "steps": args.steps,
                "seconds": seconds,
                "overhead_us_per_step": per_step_us,
                "callback_over_torch_time": seconds["callback"] / seconds["torch"],
                "final_lr": final_lr,
            }
        )
    )


if __name__ == "__main__":
    main()
