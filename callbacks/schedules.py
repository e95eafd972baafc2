"""Schedules as pure functions of the optimizer step.

A value that depends on nothing but the step is identical on every DDP rank and continues exactly
after a resume (Lightning restores ``trainer.global_step``), so the callbacks in this package only
compute a value here and write it into the optimizer or the module. The idea follows fastai's
``callback/schedule.py`` (annealers combined into phases); the one-cycle arithmetic follows
``torch.optim.lr_scheduler.OneCycleLR`` operation for operation, so the two agree to the last bit.

One-cycle policy: Smith & Topin, "Super-Convergence", arXiv:1708.07120; Smith, "A disciplined
approach to neural network hyper-parameters", arXiv:1803.09820 (momentum cycled inversely to the
learning rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from callbacks.errors import CallbackConfigError

AnnealFn = Callable[[float, float, float], float]


def anneal_linear(start: float, end: float, pct: float) -> float:
    """Straight line from ``start`` (pct=0) to ``end`` (pct=1); torch's operation order."""
    return (end - start) * pct + start


def anneal_cos(start: float, end: float, pct: float) -> float:
    """Half cosine from ``start`` to ``end``: flat at both ends, so no jump between phases."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def anneal_exp(start: float, end: float, pct: float) -> float:
    """Geometric interpolation: equal ratios per step, so it needs ``start`` and ``end`` > 0."""
    return start * (end / start) ** pct


ONE_CYCLE_ANNEALERS: dict[str, AnnealFn] = {"cos": anneal_cos, "linear": anneal_linear}
DECAY_SHAPES: dict[str, AnnealFn] = {
    "linear": anneal_linear,
    "cosine": anneal_cos,
    "exponential": anneal_exp,
}


@dataclass(frozen=True)
class Phase:
    """One stretch of a piecewise schedule.

    Attributes:
        end_step: last step of the phase, inclusive; fractional as in torch's OneCycleLR.
        start: value at the phase's first step.
        end: value at ``end_step``.
    """

    end_step: float
    start: float
    end: float


def piecewise(step: float, phases: Sequence[Phase], anneal: AnnealFn) -> float:
    """Value at ``step`` of consecutive phases; the last phase extrapolates past its end."""
    start_step = 0.0
    for i, phase in enumerate(phases):
        if step <= phase.end_step or i == len(phases) - 1:
            pct = (step - start_step) / (phase.end_step - start_step)
            return anneal(phase.start, phase.end, pct)
        start_step = phase.end_step
    raise CallbackConfigError("piecewise() needs at least one phase")


def one_cycle_boundaries(total_steps: int, pct_start: float, three_phase: bool) -> list[float]:
    """Last step of each one-cycle phase, computed exactly as torch's OneCycleLR does."""
    if three_phase:
        return [
            float(pct_start * total_steps) - 1,
            float(2 * pct_start * total_steps) - 2,
            total_steps - 1,
        ]
    return [float(pct_start * total_steps) - 1, total_steps - 1]


def check_one_cycle_boundaries(total_steps: int, pct_start: float, three_phase: bool) -> None:
    """Raise when a phase would be empty (torch divides by zero there).

    Raises:
        CallbackConfigError: naming ``total_steps`` and ``pct_start`` and what would fix them.
    """
    start = 0.0
    for end in one_cycle_boundaries(total_steps, pct_start, three_phase):
        if end == start:
            raise CallbackConfigError(
                f"one-cycle schedule with total_steps={total_steps}, pct_start={pct_start}, "
                f"three_phase={three_phase} has an empty phase ending at step {end}; "
                "make sure total_steps * pct_start is not 1 and pct_start < 1 "
                "(more steps, or another pct_start)"
            )
        start = end


def one_cycle(
    step: int,
    *,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> tuple[float, float]:
    """Learning rate and momentum for optimizer step ``step`` (0-based) of one param group.

    Equals ``OneCycleLR`` after ``step`` scheduler steps: the LR rises from ``max_lr / div_factor``
    to ``max_lr`` over ``pct_start`` of the steps while momentum falls from ``max_momentum`` to
    ``base_momentum``, then both go back; the LR ends at ``max_lr / div_factor / final_div_factor``.
    With ``three_phase`` the LR first returns to its start value (momentum to ``max_momentum``) and
    a third phase anneals it far below, as in the fast.ai 2018 lessons' ``use_clr_beta``.

    Returns:
        ``(lr, momentum)``.
    """
    anneal = ONE_CYCLE_ANNEALERS[anneal_strategy]
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    ends = one_cycle_boundaries(total_steps, pct_start, three_phase)
    if three_phase:
        lr_points = [(initial_lr, max_lr), (max_lr, initial_lr), (initial_lr, min_lr)]
        mom_points = [
            (max_momentum, base_momentum),
            (base_momentum, max_momentum),
            (max_momentum, max_momentum),
        ]
    else:
        lr_points = [(initial_lr, max_lr), (max_lr, min_lr)]
        mom_points = [(max_momentum, base_momentum), (base_momentum, max_momentum)]
    lr = piecewise(
        step, [Phase(e, a, b) for e, (a, b) in zip(ends, lr_points, strict=True)], anneal
    )
    momentum = piecewise(
        step, [Phase(e, a, b) for e, (a, b) in zip(ends, mom_points, strict=True)], anneal
    )
    return lr, momentum


def decay(step: int, *, total_steps: int, start: float, end: float, shape: str = "linear") -> float:
    """Value going from ``start`` at step 0 to ``end`` at ``total_steps``, then held at ``end``.

    ``linear`` is ``start + (end - start) * min(1, step / total_steps)``; ``cosine`` eases in and
    out; ``exponential`` interpolates geometrically (``start`` and ``end`` must be > 0).
    """
    if step >= total_steps:
        return end  # exactly, not start + (end - start) * 1 with its rounding error
    return DECAY_SHAPES[shape](start, end, step / total_steps)
