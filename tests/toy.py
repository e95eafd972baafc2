"""A tiny regression LightningModule and a recorder, for testing callbacks in real Trainer runs."""

from __future__ import annotations

import importlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks._lightning import LightningCallback

OPTIMIZERS = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(0.8, 0.99)),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr, momentum=0.5),
    "adagrad": lambda params, lr: torch.optim.Adagrad(params, lr=lr),
}


def make_toy_module(
    optimizer: str = "sgd", namespace: str = "pytorch_lightning", **kwargs: Any
) -> Any:
    """A ``ToyRegression`` built on ``namespace``'s LightningModule (both Lightning packages)."""
    pl = importlib.import_module(namespace)

    class ToyRegression(pl.LightningModule):
        """Linear regression on 7 features with ``n_groups`` param groups and a ``pr_force``."""

        def __init__(
            self,
            optimizer: str = "sgd",
            n_groups: int = 1,
            n_samples: int = 60,
            batch_size: int = 4,
            with_scheduler: bool = False,
        ) -> None:
            super().__init__()
            self.optimizer_name = optimizer
            self.with_scheduler = with_scheduler
            self.n_samples = n_samples
            self.batch_size = batch_size
            self.pr_force = 0.0
            self.heads = nn.ModuleList(nn.Linear(7, 1) for _ in range(n_groups))
            # (stage, global_step, pr_force) for every batch the module sees.
            self.seen_pr_force: list[tuple[str, int, float]] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return sum(head(x) for head in self.heads)

        def _loss(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
            self.seen_pr_force.append((stage, self.trainer.global_step, self.pr_force))
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self._loss(batch, "train")

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self._loss(batch, "validate")

        def test_step(self, batch: Any, batch_idx: int) -> None:
            self._loss(batch, "test")

        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self._loss(batch, "predict")
            return self(batch[0])

        def configure_optimizers(self) -> Any:
            groups = [{"params": head.parameters()} for head in self.heads]
            optimizer = OPTIMIZERS[self.optimizer_name](groups, 0.01)
            if self.with_scheduler:
                scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
                return {"optimizer": optimizer, "lr_scheduler": scheduler}
            return optimizer

        def _loader(self, seed: int) -> DataLoader:
            generator = torch.Generator().manual_seed(seed)
            x = torch.randn(self.n_samples, 7, generator=generator)
            y = x.sum(dim=1, keepdim=True)
            return DataLoader(TensorDataset(x, y), batch_size=self.batch_size)

        def train_dataloader(self) -> DataLoader:
            return self._loader(0)

        def val_dataloader(self) -> DataLoader:
            return self._loader(1)

        def test_dataloader(self) -> DataLoader:
            return self._loader(2)

        def predict_dataloader(self) -> DataLoader:
            return self._loader(3)

    return ToyRegression(optimizer=optimizer, **kwargs)


class Recorder(LightningCallback):
    """Record the LR and momentum each param group has when the optimizer steps."""

    def __init__(self) -> None:
        # global_step -> [(lr, momentum) per param group], as the optimizer is about to step.
        self.steps: dict[int, list[tuple[float, float | None]]] = {}

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        values = []
        for group in optimizer.param_groups:
            momentum = group["betas"][0] if "betas" in group else group.get("momentum")
            values.append((group["lr"], momentum))
        self.steps[trainer.global_step] = values


class AtStep(LightningCallback):
    """Do ``act`` before the batch that would run optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            self.act(batch)

    def act(self, batch: Any) -> None:
        raise NotImplementedError


class CrashAt(AtStep):
    """Raise before optimizer step ``step``: a simulated preemption."""

    def act(self, batch: Any) -> None:
        raise SimulatedCrash(f"crash at step {self.step}")


class SigtermAt(AtStep):
    """Send this process SIGTERM before optimizer step ``step``, as a cluster scheduler would."""

    def act(self, batch: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


class PoisonBatch(AtStep):
    """Put a NaN into the batch of optimizer step ``step``, as a corrupt record would."""

    def act(self, batch: Any) -> None:
        batch["x"][0, 0] = float("nan")


class SimulatedCrash(RuntimeError):
    """Raised by ``CrashAt``."""


def torch_one_cycle_reference(
    total_steps: int, n_groups: int, optimizer: str, **kwargs: Any
) -> list[list[tuple[float, float | None]]]:
    """What torch's OneCycleLR gives for optimizer steps 0..total_steps-1, per param group."""
    params = [{"params": [nn.Parameter(torch.zeros(1))]} for _ in range(n_groups)]
    opt = OPTIMIZERS[optimizer](params, 0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, total_steps=total_steps, **kwargs)
    out = []
    for _ in range(total_steps):
        momenta = [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]
        out.append(list(zip(sched.get_last_lr(), momenta, strict=True)))
        opt.step()
        sched.step()
    return out


@dataclass
class Run:
    trainer: Any
    module: Any
    recorder: Recorder


def run_with_crash(
    trainer_kwargs: dict, tmp_path: Path, crash_step: int, make_callbacks: Any
) -> tuple[Run, Run]:
    """An uninterrupted 3-epoch run, and one that crashes at ``crash_step`` then resumes.

    Both use Adam with 2 param groups and ``accumulate_grad_batches=2`` (8 optimizer steps per
    epoch, the last window one batch short); the crashed run checkpoints after every optimizer step
    and resumes from the checkpoint written at ``crash_step``.
    """
    settings = {**trainer_kwargs, "accumulate_grad_batches": 2, "max_epochs": 3}
    runs = []
    for crash in (False, True):
        recorder, module = Recorder(), make_toy_module("adam", n_groups=2)
        callbacks = [*make_callbacks(), recorder]
        kwargs = settings
        if crash:
            ckpt = ModelCheckpoint(
                tmp_path / "ckpt", "{step}", every_n_train_steps=1, save_top_k=-1
            )
            kwargs = {**settings, "enable_checkpointing": True}
            with pytest.raises(SimulatedCrash):
                pl.Trainer(callbacks=[*callbacks, ckpt, CrashAt(crash_step)], **kwargs).fit(module)
            recorder, module = Recorder(), make_toy_module("adam", n_groups=2)
            callbacks = [*make_callbacks(), recorder]
        trainer = pl.Trainer(callbacks=callbacks, **kwargs)
        ckpt_path = tmp_path / "ckpt" / f"step={crash_step}.ckpt" if crash else None
        trainer.fit(module, ckpt_path=ckpt_path)
        runs.append(Run(trainer, module, recorder))
    return runs[0], runs[1]


class WeightDigest(pl.Callback):
    """Writes ``<folder>/weights-rank<R>.json`` at the end of fit: a SHA-256 of every parameter
    and buffer of this rank's model (and its global step), so a test can tell whether all ranks of
    a multi-process run ended with the same weights."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import hashlib
        import json

        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
        self.folder.mkdir(parents=True, exist_ok=True)
        out = self.folder / f"weights-rank{trainer.global_rank}.json"
        out.write_text(json.dumps({"sha256": digest.hexdigest(), "step": trainer.global_step}))
