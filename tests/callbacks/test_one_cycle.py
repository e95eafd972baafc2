"""OneCycleScheduler in real Trainer runs, value for value against torch's OneCycleLR."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from callbacks import OneCycleScheduler
from tests.toy import (
    CrashAt,
    Recorder,
    SimulatedCrash,
    make_toy_module,
    run_with_crash,
    torch_one_cycle_reference,
)

TOL = 1e-9


def fit(trainer_kwargs: dict[str, Any], callbacks: list, module: Any = None, **kwargs: Any) -> Any:
    settings = {**trainer_kwargs, "max_epochs": 3, **kwargs}
    trainer = pl.Trainer(callbacks=callbacks, **settings)
    trainer.fit(module if module is not None else make_toy_module())
    return trainer


def assert_matches(recorded: dict, reference: list, steps: range) -> None:
    assert sorted(recorded) == list(steps), "one recording per optimizer step, none missing"
    for step in steps:
        for (lr, mom), (ref_lr, ref_mom) in zip(recorded[step], reference[step], strict=True):
            assert lr == pytest.approx(ref_lr, rel=TOL, abs=TOL), f"lr at step {step}"
            assert mom == pytest.approx(ref_mom, rel=TOL, abs=TOL), f"momentum at step {step}"


@pytest.mark.parametrize(
    ("optimizer", "three_phase", "accumulate"),
    list(itertools.product(["sgd", "adam"], [False, True], [1, 2])),
)
def test_matches_torch_one_cycle(
    trainer_kwargs: dict, optimizer: str, three_phase: bool, accumulate: int
) -> None:
    args = {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0}
    args |= {"three_phase": three_phase, "base_momentum": [0.8, 0.7, 0.6]}
    callback = OneCycleScheduler(max_lr=[0.1, 0.2, 0.3], **args)
    recorder = Recorder()
    module = make_toy_module(optimizer=optimizer, n_groups=3)
    trainer = fit(trainer_kwargs, [callback, recorder], module, accumulate_grad_batches=accumulate)

    # 60 samples / batch 4 = 15 batches; ceil(15 / accumulate) optimizer steps per epoch, 3 epochs.
    total = -(-15 // accumulate) * 3
    assert trainer.global_step == total == trainer.estimated_stepping_batches
    reference = torch_one_cycle_reference(total, 3, optimizer, max_lr=[0.1, 0.2, 0.3], **args)
    assert_matches(recorder.steps, reference, range(total))


@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
@pytest.mark.parametrize(
    "limits",
    [{"limit_train_batches": 7}, {"max_steps": 20}, {"limit_train_batches": 0.5, "max_epochs": 2}],
)
def test_total_steps_follows_trainer_limits(
    trainer_kwargs: dict, anneal_strategy: str, limits: dict
) -> None:
    recorder = Recorder()
    callback = OneCycleScheduler(max_lr=0.05, anneal_strategy=anneal_strategy)
    trainer = fit(trainer_kwargs, [callback, recorder], **limits)
    total = trainer.global_step
    assert callback.state_dict() == {"total_steps": total}
    reference = torch_one_cycle_reference(
        total, 1, "sgd", max_lr=0.05, anneal_strategy=anneal_strategy
    )
    assert_matches(recorder.steps, reference, range(total))


@pytest.mark.parametrize(("optimizer", "key"), [("rmsprop", "momentum"), ("adamw", "betas")])
def test_momentum_cycles_inversely(trainer_kwargs: dict, optimizer: str, key: str) -> None:
    recorder = Recorder()
    module = make_toy_module(optimizer)
    assert key in module.configure_optimizers().defaults
    fit(trainer_kwargs, [OneCycleScheduler(max_lr=0.1), recorder], module)
    lrs = [recorder.steps[s][0][0] for s in sorted(recorder.steps)]
    momenta = [recorder.steps[s][0][1] for s in sorted(recorder.steps)]
    for i in range(1, len(lrs)):
        assert (lrs[i] - lrs[i - 1]) * (momenta[i] - momenta[i - 1]) <= 0, f"step {i}"
    assert min(momenta) == pytest.approx(0.85, abs=1e-3) and momenta[lrs.index(max(lrs))] == min(
        momenta
    )
    assert momenta[0] == pytest.approx(0.95) and momenta[-1] == pytest.approx(0.95, abs=1e-3)


def test_optimizer_without_momentum_gets_lr_only(trainer_kwargs: dict) -> None:
    recorder = Recorder()
    with pytest.warns(UserWarning, match="Adagrad has neither `momentum` nor `betas`"):
        fit(trainer_kwargs, [OneCycleScheduler(max_lr=0.1), recorder], make_toy_module("adagrad"))
    reference = torch_one_cycle_reference(45, 1, "adagrad", max_lr=0.1, cycle_momentum=False)
    lrs = {s: [(v[0][0], 0.0)] for s, v in recorder.steps.items()}
    assert_matches(lrs, [[(r[0][0], 0.0)] for r in reference], range(45))


def test_logs_every_step_through_module_logger(trainer_kwargs: dict, tmp_path: Path) -> None:
    recorder = Recorder()
    logger = CSVLogger(tmp_path, name="csv")
    module = make_toy_module(optimizer="adam", n_groups=2)
    fit(
        {**trainer_kwargs, "logger": logger, "log_every_n_steps": 1},
        [OneCycleScheduler(max_lr=[0.1, 0.01]), recorder],
        module,
    )
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = {int(r["step"]): r for r in rows if r.get("train/lr_pg0")}
    assert sorted(logged) == sorted(recorder.steps)
    for step, values in recorder.steps.items():
        for g, (lr, momentum) in enumerate(values):
            assert float(logged[step][f"train/lr_pg{g}"]) == pytest.approx(lr, rel=1e-6)
            assert float(logged[step][f"train/momentum_pg{g}"]) == pytest.approx(momentum, rel=1e-6)


def test_holds_final_values_past_total_steps(trainer_kwargs: dict) -> None:
    recorder = Recorder()
    with pytest.warns(UserWarning, match="step 5 is past total_steps=5"):
        fit(trainer_kwargs, [OneCycleScheduler(max_lr=0.1, total_steps=5), recorder], max_epochs=1)
    assert recorder.steps[14] == recorder.steps[4]
    assert recorder.steps[4][0][0] == pytest.approx(0.1 / 25 / 1e4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_lr": 0}, "max_lr=0"),
        ({"max_lr": [0.1, -1]}, r"max_lr=\[0.1, -1\]"),
        ({"max_lr": 0.1, "total_steps": 0}, "total_steps=0"),
        ({"max_lr": 0.1, "pct_start": 1.5}, "pct_start=1.5"),
        ({"max_lr": 0.1, "anneal_strategy": "cosine"}, r"valid: \['cos', 'linear'\]"),
        ({"max_lr": 0.1, "base_momentum": 1.2}, "base_momentum=1.2"),
        ({"max_lr": 0.1, "div_factor": 0}, "div_factor=0"),
        ({"max_lr": float("inf")}, "max_lr=inf.*expected a finite number"),
        ({"max_lr": float("nan")}, "max_lr=nan"),
        ({"max_lr": 0.1, "final_div_factor": float("inf")}, "final_div_factor=inf"),
        ({"max_lr": 0.1, "pct_start": float("nan")}, "pct_start=nan"),
    ],
)
def test_one_cycle_raises_on_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OneCycleScheduler(**kwargs)


def test_one_cycle_raises_when_module_also_returns_a_scheduler(trainer_kwargs: dict) -> None:
    with pytest.raises(RuntimeError, match="also returns a StepLR"):
        fit(trainer_kwargs, [OneCycleScheduler(max_lr=0.1)], make_toy_module(with_scheduler=True))


def test_one_cycle_raises_on_group_count_mismatch(trainer_kwargs: dict) -> None:
    with pytest.raises(ValueError, match="has 2 values but the optimizer has 3 param groups"):
        fit(trainer_kwargs, [OneCycleScheduler(max_lr=[0.1, 0.2])], make_toy_module(n_groups=3))


def test_one_cycle_raises_on_infinite_training(trainer_kwargs: dict) -> None:
    with pytest.raises(
        ValueError, match="cannot infer its length in optimizer steps: training is infinite"
    ):
        fit(trainer_kwargs, [OneCycleScheduler(max_lr=0.1)], max_epochs=-1)


def test_one_cycle_raises_on_empty_phase(trainer_kwargs: dict) -> None:
    # 10 steps with pct_start=0.1: the warm-up phase would end at step 0, where torch divides by 0.
    with pytest.raises(ValueError, match="empty phase"):
        fit(trainer_kwargs, [OneCycleScheduler(max_lr=0.1, pct_start=0.1)], max_steps=10)


@pytest.mark.parametrize("crash_step", [3, 8, 13])  # mid-epoch 0, epoch boundary, mid-epoch 1
def test_one_cycle_resume_continues_exact_sequence(
    trainer_kwargs: dict, tmp_path: Path, crash_step: int
) -> None:
    def make_callbacks() -> list:
        return [OneCycleScheduler(max_lr=[0.1, 0.02], three_phase=True)]

    full, resumed = run_with_crash(trainer_kwargs, tmp_path, crash_step, make_callbacks)
    assert resumed.trainer.global_step == 24
    assert sorted(resumed.recorder.steps) == list(range(crash_step, 24))
    for step in range(crash_step, 24):
        assert resumed.recorder.steps[step] == full.recorder.steps[step], f"step {step}"


def test_one_cycle_resume_keeps_checkpoint_cycle_when_epochs_change(
    trainer_kwargs: dict, tmp_path: Path
) -> None:
    checkpoints = ModelCheckpoint(tmp_path, "{step}", every_n_train_steps=1, save_top_k=-1)
    first = OneCycleScheduler(max_lr=0.1)
    with pytest.raises(SimulatedCrash):
        fit(
            {**trainer_kwargs, "enable_checkpointing": True},
            [first, checkpoints, CrashAt(20)],
        )
    resumed, recorder = OneCycleScheduler(max_lr=0.1), Recorder()
    trainer = pl.Trainer(callbacks=[resumed, recorder], **{**trainer_kwargs, "max_epochs": 4})
    with pytest.warns(
        UserWarning, match="checkpoint's schedule lasts 45 optimizer steps, this run would give 60"
    ):
        trainer.fit(make_toy_module(), ckpt_path=tmp_path / "step=20.ckpt")
    reference = torch_one_cycle_reference(45, 1, "sgd", max_lr=0.1)
    assert_matches({s: v for s, v in recorder.steps.items() if s < 45}, reference, range(20, 45))
