"""A checkpoint when fit stops on an exception: Ctrl-C, a scheduler's SIGTERM, or an error.

Lightning turns SIGTERM into ``SIGTERMException`` at the end of the running batch and calls every
callback's ``on_exception``; saving there means a preempted job loses nothing. Lightning ships
``OnExceptionCheckpoint`` for this, but its presence makes ``fit(ckpt_path=None)`` mean "resume
from the last checkpoint in this run's folder" (with a warning on every fresh run); this one only
saves, and resuming stays explicit (``ckpt_path=...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typing_extensions import override

from callbacks._lightning import LightningCallback
from callbacks.errors import CallbackConfigError
from callbacks.finite_loss import NonFiniteLossError


class InterruptCheckpoint(LightningCallback):
    """Save ``<dirpath>/<filename>.ckpt`` when training raises (KeyboardInterrupt, SIGTERM, errors),
    except for ``NonFiniteLossError``, whose state is not worth keeping.

    Args:
        dirpath: folder of the checkpoint.
        filename: file name without ``.ckpt``.

    Example::

        >>> from pytorch_lightning import Trainer
        >>> from callbacks import InterruptCheckpoint
        >>> trainer = Trainer(callbacks=[InterruptCheckpoint("checkpoints")], logger=False)
    """

    def __init__(self, dirpath: str | Path, filename: str = "on_exception") -> None:
        if not filename or "/" in filename:
            raise CallbackConfigError(
                f"InterruptCheckpoint(filename={filename!r}): expected a file name"
            )
        self.path = Path(dirpath) / f"{filename}.ckpt"

    @override
    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return  # nothing trained yet, or not training
        if isinstance(exception, NonFiniteLossError):
            return  # the state may hold NaN statistics; the earlier checkpoints are the good ones
        trainer.save_checkpoint(self.path)
