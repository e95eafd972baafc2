"""A Lightning project outside this repository that uses only the copied ``callbacks`` package.

The tests copy this file and ``callbacks/`` into an empty folder and run it there, on one process or
on 2-process CPU DDP, optionally crashing mid-epoch and resuming. Each rank writes what the
optimizer and the module saw at every step to ``<out>/rank<r>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import callbacks
from callbacks import OneCycleScheduler, TeacherForcingScheduler

ONE_CYCLE = {"max_lr": [0.05, 0.01], "pct_start": 0.4, "three_phase": False}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="pytorch_lightning")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--samples", type=int, default=75)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crash-at", type=int, default=None)
    parser.add_argument("--resume", type=Path, default=None)
    args = parser.parse_args()
    pl = importlib.import_module(args.namespace)

    class Regression(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.pr_force = 0.0
            self.a, self.b = nn.Linear(5, 1), nn.Linear(5, 1)
            self.train_pr_force: dict[int, list[float]] = {}
            self.eval_pr_force: list[float] = []

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self.train_pr_force.setdefault(self.global_step, []).append(self.pr_force)
            x, y = batch
            return nn.functional.mse_loss(self.a(x) + self.b(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.eval_pr_force.append(self.pr_force)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            groups = [{"params": self.a.parameters()}, {"params": self.b.parameters()}]
            return torch.optim.Adam(groups, lr=1e-3, betas=(0.9, 0.99))

        def _loader(self, seed: int) -> DataLoader:
            x = torch.randn(args.samples, 5, generator=torch.Generator().manual_seed(seed))
            return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)

        def train_dataloader(self) -> DataLoader:
            return self._loader(0)

        def val_dataloader(self) -> DataLoader:
            return self._loader(1)

    class Record(pl.Callback):
        def __init__(self) -> None:
            self.steps: dict[int, list[list[float]]] = {}

        def on_before_optimizer_step(self, trainer: Any, module: Any, optimizer: Any) -> None:
            self.steps[trainer.global_step] = [
                [g["lr"], g["betas"][0]] for g in optimizer.param_groups
            ]

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
            if args.crash_at is not None and trainer.global_step == args.crash_at:
                self.write(trainer, module)
                raise RuntimeError(f"simulated crash at step {args.crash_at}")

        def on_train_end(self, trainer: Any, module: Any) -> None:
            self.write(trainer, module)

        def write(self, trainer: Any, module: Any) -> None:
            args.out.mkdir(parents=True, exist_ok=True)
            record = {
                "callbacks_file": callbacks.__file__,
                "namespace": args.namespace,
                "world_size": trainer.world_size,
                "rank": trainer.global_rank,
                "total_steps": trainer.estimated_stepping_batches,
                "global_step": trainer.global_step,
                "steps": self.steps,
                "train_pr_force": module.train_pr_force,
                "eval_pr_force": module.eval_pr_force,
            }
            (args.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))

    checkpoints = pl.callbacks.ModelCheckpoint(
        args.out / "ckpt", "{step}", every_n_train_steps=1, save_top_k=-1
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=3,
        accumulate_grad_batches=2,
        num_sanity_val_steps=2,
        limit_val_batches=2,
        callbacks=[
            OneCycleScheduler(**ONE_CYCLE),
            TeacherForcingScheduler(start=1.0, end=0.0, epochs=2),
            checkpoints,
            Record(),
        ],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=args.out,
    )
    trainer.fit(Regression(), ckpt_path=args.resume)


if __name__ == "__main__":
    main()
