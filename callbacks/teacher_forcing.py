"""Teacher-forcing decay as a Lightning callback.

Scheduled sampling (Bengio et al., arXiv:1506.03099) feeds the decoder the reference token with
probability ``pr_force`` and its own prediction otherwise, lowering ``pr_force`` as training goes
on. The fast.ai 2018 translation lesson decays it linearly, ``(10 - epoch) / 10``; this callback
does the same per optimizer step so the decay is smooth and resumable mid-epoch.
"""

from __future__ import annotations

import math
from typing import Any

from typing_extensions import override

from callbacks._lightning import StepScheduleCallback, log_when_written
from callbacks.errors import CallbackConfigError, MissingAttributeError
from callbacks.schedules import DECAY_SHAPES, decay

GRANULARITIES = ("step", "epoch")


class TeacherForcingScheduler(StepScheduleCallback):
    """Set ``pl_module.<attr>`` before each training batch from a decay over optimizer steps.

    At optimizer step ``s`` the value is ``start + (end - start) * min(1, s / T)`` for the linear
    shape, where ``T`` is ``steps`` or ``epochs`` times the optimizer steps per epoch; ``cosine``
    eases in and out, ``exponential`` interpolates geometrically. Outside training batches
    (validation, sanity check, test, predict) the attribute is 0.0, so evaluation never sees the
    reference. The value depends only on ``trainer.global_step``: no random numbers, the same on
    every DDP rank, and it continues exactly after a resume. It is logged as ``train/<attr>``.
    With ``granularity="epoch"`` the value is held for a whole epoch at its value for the epoch's
    first step; with the defaults that is the lesson's ``(10 - epoch) / 10``.

    Args:
        start: value at step 0.
        end: value from step ``T`` on.
        epochs: length of the decay in epochs (ignored when ``steps`` is given).
        steps: length of the decay in optimizer steps.
        attr: name of the module attribute the decoder reads.
        shape: ``"linear"``, ``"cosine"`` or ``"exponential"``.
        granularity: ``"step"`` (a new value every optimizer step) or ``"epoch"``.

    Raises:
        CallbackConfigError: on an argument out of range, or an exponential shape with ``start`` or
            ``end`` <= 0; at train start when the epoch length is unknown (iterable dataset)
            and ``steps`` is not given or ``granularity="epoch"``.
        AttributeError: at setup when the module has no attribute ``attr``.

    Example::

        >>> from pytorch_lightning import Trainer
        >>> from callbacks import TeacherForcingScheduler
        >>> trainer = Trainer(callbacks=[TeacherForcingScheduler(epochs=10)], logger=False)
    """

    def __init__(
        self,
        start: float = 1.0,
        end: float = 0.0,
        epochs: int = 10,
        steps: int | None = None,
        attr: str = "pr_force",
        shape: str = "linear",
        granularity: str = "step",
    ) -> None:
        if shape not in DECAY_SHAPES:
            raise CallbackConfigError(
                f"TeacherForcingScheduler(shape={shape!r}) unknown; valid: {sorted(DECAY_SHAPES)}"
            )
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise CallbackConfigError(
                    f"TeacherForcingScheduler({name}={value!r}): expected a probability"
                )
        if shape == "exponential" and (start <= 0 or end <= 0):
            raise CallbackConfigError(
                f"TeacherForcingScheduler(shape='exponential', start={start}, end={end}): "
                "geometric decay needs start > 0 and end > 0 (e.g. end=0.01), or use shape='cosine'"
            )
        for name, value in (("epochs", epochs), ("steps", steps)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise CallbackConfigError(
                    f"TeacherForcingScheduler({name}={value!r}): expected an int >= 1"
                )
        if granularity not in GRANULARITIES:
            raise CallbackConfigError(
                f"TeacherForcingScheduler(granularity={granularity!r}) unknown; "
                f"valid: {list(GRANULARITIES)}"
            )
        if not attr.isidentifier():
            raise CallbackConfigError(
                f"TeacherForcingScheduler(attr={attr!r}): expected an attribute name"
            )
        super().__init__()
        self.start = float(start)
        self.end = float(end)
        self.epochs = epochs
        self.steps = steps
        self.attr = attr
        self.shape = shape
        self.granularity = granularity
        self._steps_per_epoch: int | None = None

    @property
    @override
    def state_key(self) -> str:
        # Two instances may drive two attributes; keep their checkpoint states apart.
        return self._generate_state_key(attr=self.attr)

    @override
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if not hasattr(pl_module, self.attr):
            raise MissingAttributeError(
                f"TeacherForcingScheduler(attr={self.attr!r}): {type(pl_module).__name__} has "
                f"no attribute {self.attr!r}; declare it in __init__ (self.{self.attr} = 0.0) and "
                "read it in the decoder, or pass the name your module uses as attr="
            )
        setattr(pl_module, self.attr, 0.0)  # setup runs before every fit/validate/test/predict

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        per_epoch = trainer.num_training_batches / trainer.accumulate_grad_batches
        self._steps_per_epoch = math.ceil(per_epoch) if math.isfinite(per_epoch) else None
        unknown = (
            "an iterable dataset has no known steps per epoch; pass steps= (the decay length "
            "in optimizer steps) and granularity='step'"
        )
        if self.granularity == "epoch" and self._steps_per_epoch is None:
            raise CallbackConfigError(f"TeacherForcingScheduler(granularity='epoch'): {unknown}")
        if self.steps is not None:
            estimate: float = self.steps
        elif self._steps_per_epoch is None:
            estimate = math.inf
        else:
            estimate = self.epochs * self._steps_per_epoch
        self._resolve_total_steps(estimate, unknown)

    @override
    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.granularity == "epoch":
            assert self._steps_per_epoch is not None, "on_train_start checks it"
            step = trainer.current_epoch * self._steps_per_epoch
        value = self.value_at(step)
        setattr(pl_module, self.attr, value)
        log_when_written(trainer, pl_module, {f"train/{self.attr}": value})

    @override
    def on_train_batch_end(  # validation inside an epoch comes after this, so it sees 0.0
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        setattr(pl_module, self.attr, 0.0)

    def value_at(self, step: int) -> float:
        """Teacher-forcing probability for optimizer step ``step`` of the resolved decay."""
        if self._resolved_total_steps is None:
            raise RuntimeError(
                "TeacherForcingScheduler.value_at() needs the decay length; use it in fit"
            )
        return decay(
            step,
            total_steps=self._resolved_total_steps,
            start=self.start,
            end=self.end,
            shape=self.shape,
        )
