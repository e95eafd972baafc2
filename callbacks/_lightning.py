"""A callback base class that both Lightning packages accept.

``pytorch_lightning.Trainer`` and ``lightning.pytorch.Trainer`` each accept only subclasses of their
own ``Callback``. Deriving from every one that is installed lets a project on either package use
these callbacks unchanged; the hooks are the same in both.
"""

from __future__ import annotations

import importlib
from typing import Any

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
