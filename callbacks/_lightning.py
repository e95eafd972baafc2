"""A callback base class that both Lightning packages accept.

``pytorch_lightning.Trainer`` and ``lightning.pytorch.Trainer`` each accept only subclasses of their
own ``Callback``. Deriving from every one that is installed lets a project on either package use
these callbacks unchanged; the hooks are the same in both.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_warn

from callbacks.errors import CallbackConfigError

_bases: list[type] = []
for _name in ("lightning.pytorch", "pytorch_lightning"):
    try:
        _bases.append(importlib.import_module(_name).Callback)
    except ImportError:
        continue

if not _bases:
    raise ImportError(
        "callbacks needs Lightning 2.x: pip install 'pytorch-lightning>=2' (or 'lightning>=2')"
    )


class LightningCallback(*_bases):  # type: ignore[misc]
    """``Callback`` of every installed Lightning namespace."""


def log_when_written(trainer: Any, pl_module: Any, metrics: dict[str, float]) -> None:
    """``pl_module.log`` the step's metrics, but only on batches whose metrics the logger writes.

    Lightning writes step metrics every ``log_every_n_steps``; a ``pl_module.log`` call costs a few
    hundred microseconds on CPU, so calling it on every batch made a schedule callback 50 times
    dearer than torch's scheduler (bench/schedule_overhead.py). Lightning's own LearningRateMonitor
    asks the same question of its logger connector, from ``on_train_batch_start`` too.
    """
    connector = getattr(trainer, "_logger_connector", None)
    if connector is not None and not connector.should_update_logs:
        return
    for name, value in metrics.items():
        pl_module.log(name, value, on_step=True, on_epoch=False, batch_size=1)


class StepScheduleCallback(LightningCallback):
    """A callback whose value is a pure function of the optimizer step over a fixed length.

    The length is the schedule's only state: it goes into the checkpoint, so a resumed run keeps
    the length it started with even when ``max_epochs`` or the data changed, and the sequence
    continues exactly.
    """

    def __init__(self) -> None:
        self._resolved_total_steps: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"total_steps": self._resolved_total_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resolved_total_steps = state_dict.get("total_steps")

    def _resolve_total_steps(self, estimate: float, unknown_hint: str) -> int:
        """The checkpoint's length when resuming (warning when this run would differ), else
        ``estimate``; ``unknown_hint`` completes the error when ``estimate`` is infinite."""
        name = type(self).__name__
        if self._resolved_total_steps is None:
            if not math.isfinite(estimate):
                raise CallbackConfigError(
                    f"{name} cannot infer its length in optimizer steps: {unknown_hint}"
                )
            self._resolved_total_steps = int(estimate)
        elif math.isfinite(estimate) and int(estimate) != self._resolved_total_steps:
            rank_zero_warn(
                f"{name}: the checkpoint's schedule lasts {self._resolved_total_steps} optimizer "
                f"steps, this run would give {int(estimate)}; continuing the checkpoint's schedule"
            )
        return self._resolved_total_steps
