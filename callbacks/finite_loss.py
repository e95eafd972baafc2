"""Stop training on a NaN or infinite loss before it reaches the weights.

The check runs before ``backward``, so no gradient step is taken with it. (The forward pass may
already have moved BatchNorm statistics, so ``InterruptCheckpoint`` writes nothing for this error:
the checkpoints written before it are the good ones.) Under DDP the ranks agree first (one boolean
all-reduce per step), so every rank stops together instead of the others waiting forever at the
next gradient all-reduce.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from typing_extensions import override

from callbacks._lightning import LightningCallback


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


class StopOnNonFiniteLoss(LightningCallback):
    """Raise ``NonFiniteLossError`` naming the optimizer step when the loss is NaN or infinite.

    Example::

        >>> from pytorch_lightning import Trainer
        >>> from callbacks import StopOnNonFiniteLoss
        >>> trainer = Trainer(callbacks=[StopOnNonFiniteLoss()], logger=False)
    """

    @override
    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        bad = bool(trainer.strategy.reduce_boolean_decision(bad, all=False))
        if bad:
            value = float(loss.detach().float().mean()) if loss.numel() else math.nan
            raise NonFiniteLossError(
                f"training loss is {value} at optimizer step {trainer.global_step} (epoch "
                f"{trainer.current_epoch}, batch {trainer.fit_loop.epoch_loop.batch_idx}); "
                "stopped before the update, earlier checkpoints are kept; lower the learning "
                "rate or check the inputs of that batch"
            )
