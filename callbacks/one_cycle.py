"""One-cycle learning rate with inverse momentum, as a Lightning callback.

The callback writes ``lr`` and momentum (``momentum`` for SGD/RMSprop, ``betas[0]`` for the Adam
family) into the optimizer's param groups before every training batch, from ``trainer.global_step``
alone. That sidesteps the usual traps of a scheduler returned by ``configure_optimizers``: stepping
per epoch (Lightning#9300), per batch instead of per optimizer step under gradient accumulation or
several devices (#2149, #3205), "tried to step N+2 times" on resume (#17296).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from lightning_utilities.core.rank_zero import rank_zero_warn
from typing_extensions import override

from callbacks._lightning import StepScheduleCallback, log_when_written
from callbacks.errors import CallbackConfigError, CallbackSetupError
from callbacks.schedules import ONE_CYCLE_ANNEALERS, check_one_cycle_boundaries, one_cycle

FloatOrList = float | Sequence[float]


def _check_positive(name: str, value: FloatOrList) -> None:
    values = list(value) if isinstance(value, Sequence) else [value]
    if not values or any(
        not isinstance(v, int | float) or not v > 0 or not math.isfinite(v) for v in values
    ):
        raise CallbackConfigError(
            f"OneCycleScheduler({name}={value!r}): expected a finite number > 0 or a list of them"
        )


def _check_momentum(name: str, value: FloatOrList) -> None:
    values = list(value) if isinstance(value, Sequence) else [value]
    if not values or any(not isinstance(v, int | float) or not 0 <= v < 1 for v in values):
        raise CallbackConfigError(
            f"OneCycleScheduler({name}={value!r}): expected a number in [0, 1) or a list"
        )


def _per_group(name: str, value: FloatOrList, n_groups: int) -> list[float]:
    """One value per param group, as torch's ``_format_param`` does, with a clearer message."""
    if isinstance(value, Sequence):
        if len(value) != n_groups:
            raise CallbackConfigError(
                f"OneCycleScheduler({name}={list(value)!r}) has {len(value)} values but the "
                f"optimizer has {n_groups} param groups; give one value or one per group"
            )
        return [float(v) for v in value]
    return [float(value)] * n_groups


class OneCycleScheduler(StepScheduleCallback):
    """One-cycle LR and inverse momentum per optimizer step, equal to torch's ``OneCycleLR``.

    The values in effect for optimizer step ``i`` (0-based) are ``OneCycleLR``'s after ``i``
    scheduler steps with the same arguments. The schedule is a pure function of
    ``trainer.global_step``, so it handles gradient accumulation, ``limit_train_batches``,
    ``max_steps`` and several devices, is the same on every rank, and continues exactly after a
    mid-epoch resume. Values are logged each step as ``train/lr`` and ``train/momentum``
    (``train/lr_pg{i}``, ``train/momentum_pg{i}`` with several param groups). Past ``total_steps``
    the final values are held, with one warning.

    The fast.ai 2018 lessons' shape (linear up and down over equal halves, then a final tenth that
    anneals far below the start) is ``three_phase=True, pct_start=0.45, anneal_strategy="linear"``.

    Args:
        max_lr: peak learning rate, or one per param group.
        total_steps: optimizer steps in the cycle; default ``trainer.estimated_stepping_batches``.
            On resume the checkpoint's value is kept so the sequence continues unchanged.
        pct_start: fraction of the cycle spent increasing the LR.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        div_factor: initial LR is ``max_lr / div_factor``.
        final_div_factor: final LR is ``initial_lr / final_div_factor``.
        three_phase: add a phase returning to the initial LR before the final annealing.
        cycle_momentum: cycle momentum inversely to the LR; optimizers without ``momentum`` or
            ``betas`` get the LR schedule only, with one warning.
        base_momentum: momentum at the peak LR, or one per param group.
        max_momentum: momentum at the start and end, or one per param group.

    Raises:
        CallbackConfigError: on an argument out of range; at fit start when a per-group list
            does not match the param groups, when ``total_steps`` cannot be estimated (infinite
            training), or when a phase would be empty.
        CallbackSetupError: (a RuntimeError) at fit start when the module has more than one
            optimizer or also returns an LR scheduler for the optimizer this callback drives.

    Example::

        >>> from pytorch_lightning import Trainer
        >>> from callbacks import OneCycleScheduler
        >>> trainer = Trainer(callbacks=[OneCycleScheduler(max_lr=3e-3)], logger=False)
    """

    def __init__(
        self,
        max_lr: FloatOrList,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        cycle_momentum: bool = True,
        base_momentum: FloatOrList = 0.85,
        max_momentum: FloatOrList = 0.95,
    ) -> None:
        _check_positive("max_lr", max_lr)
        if total_steps is not None and (
            isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1
        ):
            raise CallbackConfigError(
                f"OneCycleScheduler(total_steps={total_steps!r}): expected an int >= 1"
            )
        if not isinstance(pct_start, int | float) or not 0 <= pct_start <= 1:
            raise CallbackConfigError(
                f"OneCycleScheduler(pct_start={pct_start!r}): expected a number in [0, 1]"
            )
        if anneal_strategy not in ONE_CYCLE_ANNEALERS:
            raise CallbackConfigError(
                f"OneCycleScheduler(anneal_strategy={anneal_strategy!r}) unknown; "
                f"valid: {sorted(ONE_CYCLE_ANNEALERS)}"
            )
        _check_positive("div_factor", div_factor)
        _check_positive("final_div_factor", final_div_factor)
        _check_momentum("base_momentum", base_momentum)
        _check_momentum("max_momentum", max_momentum)
        super().__init__()
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.three_phase = three_phase
        self.cycle_momentum = cycle_momentum
        self.base_momentum = base_momentum
        self.max_momentum = max_momentum
        self._momentum_key: str | None = None
        self._warned_past_end = False

    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        optimizer = self._the_optimizer(trainer)
        for config in trainer.lr_scheduler_configs:
            if getattr(config.scheduler, "optimizer", None) is optimizer:
                raise CallbackSetupError(
                    f"OneCycleScheduler drives the learning rate of {type(optimizer).__name__}, "
                    f"but configure_optimizers also returns a {type(config.scheduler).__name__} "
                    "for it; make sure configure_optimizers returns only the optimizer"
                )
        n_groups = len(optimizer.param_groups)
        for name in ("max_lr", "base_momentum", "max_momentum"):
            _per_group(name, getattr(self, name), n_groups)  # fail before the first batch
        self._momentum_key = self._find_momentum_key(optimizer)

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # Here, not in on_fit_start: the checkpoint's callback state and optimizer state are loaded.
        total = self._resolve_total_steps(
            self.total_steps or trainer.estimated_stepping_batches,
            "training is infinite (max_epochs=-1 and max_steps=-1, or an iterable dataset "
            "without max_steps); pass total_steps= or set trainer max_steps",
        )
        check_one_cycle_boundaries(total, self.pct_start, self.three_phase)
        self._apply(trainer, pl_module, log=False)

    @override
    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        self._apply(trainer, pl_module, log=True)

    def values_at(self, step: int, n_groups: int = 1) -> list[tuple[float, float]]:
        """``(lr, momentum)`` per param group for optimizer step ``step`` of the resolved cycle."""
        if self._resolved_total_steps is None:
            raise CallbackSetupError(
                "OneCycleScheduler.values_at() needs total_steps; call it during fit"
            )
        total = self._resolved_total_steps
        max_lrs = _per_group("max_lr", self.max_lr, n_groups)
        bases = _per_group("base_momentum", self.base_momentum, n_groups)
        maxes = _per_group("max_momentum", self.max_momentum, n_groups)
        return [
            one_cycle(
                min(step, total - 1),
                max_lr=max_lrs[g],
                total_steps=total,
                pct_start=self.pct_start,
                anneal_strategy=self.anneal_strategy,
                div_factor=self.div_factor,
                final_div_factor=self.final_div_factor,
                three_phase=self.three_phase,
                base_momentum=bases[g],
                max_momentum=maxes[g],
            )
            for g in range(n_groups)
        ]

    def _apply(self, trainer: Any, pl_module: Any, log: bool) -> None:
        optimizer = self._the_optimizer(trainer)
        step = trainer.global_step
        assert self._resolved_total_steps is not None, "on_train_start resolves total_steps"
        if step >= self._resolved_total_steps and not self._warned_past_end:
            self._warned_past_end = True
            rank_zero_warn(
                f"OneCycleScheduler: optimizer step {step} is past total_steps="
                f"{self._resolved_total_steps}; holding the final learning rate and momentum"
            )
        groups = optimizer.param_groups
        metrics: dict[str, float] = {}
        for g, (group, (lr, momentum)) in enumerate(
            zip(groups, self.values_at(step, len(groups)), strict=True)
        ):
            group["lr"] = lr
            if self._momentum_key == "betas":
                group["betas"] = (momentum, *group["betas"][1:])
            elif self._momentum_key == "momentum":
                group["momentum"] = momentum
            suffix = "" if len(groups) == 1 else f"_pg{g}"
            metrics[f"train/lr{suffix}"] = lr
            if self._momentum_key is not None:
                metrics[f"train/momentum{suffix}"] = momentum
        if log:
            log_when_written(trainer, pl_module, metrics)

    def _find_momentum_key(self, optimizer: torch.optim.Optimizer) -> str | None:
        if not self.cycle_momentum:
            return None
        if "betas" in optimizer.defaults:
            return "betas"
        if "momentum" in optimizer.defaults:
            return "momentum"
        rank_zero_warn(
            f"OneCycleScheduler: {type(optimizer).__name__} has neither `momentum` nor `betas`; "
            "scheduling the learning rate only (pass cycle_momentum=False to silence this)"
        )
        return None

    @staticmethod
    def _the_optimizer(trainer: Any) -> torch.optim.Optimizer:
        optimizers = trainer.optimizers
        if len(optimizers) != 1:
            raise CallbackSetupError(
                f"OneCycleScheduler drives exactly one optimizer; the module configured "
                f"{len(optimizers)}"
            )
        return optimizers[0]
