"""Pure schedule functions against torch's OneCycleLR and the teacher-forcing formulas."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from callbacks.schedules import (
    anneal_cos,
    anneal_exp,
    anneal_linear,
    check_one_cycle_boundaries,
    decay,
    one_cycle,
)


def torch_values(total: int, optimizer: str, **kwargs: float | str | bool) -> list[tuple]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = (
        torch.optim.SGD([param], lr=1.0, momentum=0.9)
        if optimizer == "sgd"
        else torch.optim.Adam([param], lr=1.0)
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, total_steps=total, **kwargs)
    out = []
    for _ in range(total):
        group = opt.param_groups[0]
        out.append((group["lr"], group["betas"][0] if optimizer == "adam" else group["momentum"]))
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(
    ("total", "pct_start", "three_phase", "anneal_strategy", "optimizer"),
    [
        (*combo, "sgd")
        for combo in itertools.product(
            [7, 13, 100, 1001], [0.25, 0.3, 0.45], [False, True], ["cos", "linear"]
        )
    ]
    + [
        (37, 0.0, False, "cos", "adam"),
        (37, 0.99, False, "linear", "adam"),
        (2, 0.3, False, "cos", "adam"),
    ],
)
def test_one_cycle_equals_torch(
    total: int, pct_start: float, three_phase: bool, anneal_strategy: str, optimizer: str
) -> None:
    kwargs = {
        "max_lr": 0.7,
        "pct_start": pct_start,
        "three_phase": three_phase,
        "anneal_strategy": anneal_strategy,
        "div_factor": 20.0,
        "final_div_factor": 300.0,
        "base_momentum": 0.8,
        "max_momentum": 0.97,
    }
    expected = torch_values(total, optimizer, **kwargs)
    for step, (lr, momentum) in enumerate(expected):
        got = one_cycle(step, total_steps=total, **kwargs)
        assert got[0] == pytest.approx(lr, rel=1e-12, abs=1e-15), f"lr at {step}"
        assert got[1] == pytest.approx(momentum, rel=1e-12, abs=1e-15), f"momentum at {step}"


def test_one_cycle_end_points() -> None:
    total = 1000
    assert one_cycle(0, max_lr=1.0, total_steps=total) == pytest.approx((1 / 25, 0.95))
    assert one_cycle(299, max_lr=1.0, total_steps=total) == pytest.approx((1.0, 0.85))
    assert one_cycle(999, max_lr=1.0, total_steps=total) == pytest.approx((1 / 25 / 1e4, 0.95))


def test_lesson_three_phase_shape() -> None:
    """Linear up over 45%, down over 45% to the start, then the last 10% far below it."""
    total, args = 1000, {"three_phase": True, "pct_start": 0.45, "anneal_strategy": "linear"}
    lrs = [one_cycle(s, max_lr=1.0, total_steps=total, **args)[0] for s in range(total)]
    assert max(lrs) == lrs[449] == pytest.approx(1.0)
    assert lrs[898] == pytest.approx(1 / 25)
    assert lrs[-1] == pytest.approx(1 / 25 / 1e4)
    assert lrs[100] - lrs[99] == pytest.approx(lrs[200] - lrs[199])  # linear


@pytest.mark.parametrize(
    ("total", "pct_start", "three_phase"), [(10, 0.1, False), (20, 0.05, True)]
)
def test_empty_phase_is_refused_where_torch_divides_by_zero(
    total: int, pct_start: float, three_phase: bool
) -> None:
    with pytest.raises(ZeroDivisionError):
        torch_values(total, "sgd", max_lr=1.0, pct_start=pct_start, three_phase=three_phase)
    with pytest.raises(ValueError, match=f"total_steps={total}, pct_start={pct_start}"):
        check_one_cycle_boundaries(total, pct_start, three_phase)
    check_one_cycle_boundaries(total + 1, pct_start, three_phase)


def test_annealers() -> None:
    assert anneal_linear(2.0, 1.0, 0.25) == 1.75
    assert anneal_cos(1.0, 0.0, 0.5) == pytest.approx(0.5)
    assert anneal_cos(1.0, 0.0, 0.25) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert anneal_exp(1.0, 0.01, 0.5) == pytest.approx(0.1)


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
def test_decay_end_points_and_hold(shape: str) -> None:
    values = [decay(s, total_steps=9, start=0.9, end=0.1, shape=shape) for s in range(15)]
    assert values[0] == 0.9 and values[9:] == [0.1] * 6
    assert all(a > b for a, b in itertools.pairwise(values[:10]))


def test_linear_decay_is_the_lesson_formula() -> None:
    for step in range(40):
        expected = 1.0 + (0.0 - 1.0) * min(1, step / 30)
        assert decay(step, total_steps=30, start=1.0, end=0.0) == pytest.approx(expected, abs=1e-15)
