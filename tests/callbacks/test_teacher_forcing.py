"""TeacherForcingScheduler in real Trainer runs: values, evaluation at 0.0, errors, resume."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from callbacks import OneCycleScheduler, TeacherForcingScheduler
from tests.toy import CrashAt, SimulatedCrash, make_toy_module, run_with_crash


def only(values: set[float]) -> float:
    assert len(values) == 1, f"one value per optimizer step, got {values}"
    return next(iter(values))


def train_values(module: Any) -> dict[int, set[float]]:
    """pr_force seen by training_step, grouped by optimizer step."""
    out: dict[int, set[float]] = {}
    for stage, step, value in module.seen_pr_force:
        if stage == "train":
            out.setdefault(step, set()).add(value)
    return out


def test_linear_decay_matches_formula_per_optimizer_step(trainer_kwargs: dict) -> None:
    module = make_toy_module()
    callback = TeacherForcingScheduler(start=0.9, end=0.1, epochs=2)
    trainer = pl.Trainer(
        callbacks=[callback], accumulate_grad_batches=2, max_epochs=3, **trainer_kwargs
    )
    trainer.fit(module)

    total = 2 * math.ceil(15 / 2)  # epochs * optimizer steps per epoch
    assert callback.state_dict() == {"total_steps": total}
    seen = train_values(module)
    assert sorted(seen) == list(range(24))
    for step, values in seen.items():
        # Both batches of an accumulation window belong to the same optimizer step.
        assert only(values) == pytest.approx(0.9 + (0.1 - 0.9) * min(1, step / total), abs=1e-12)
    assert seen[0] == {0.9} and seen[total] == {0.1} and seen[23] == {0.1}


def test_lesson_schedule_at_epoch_starts(trainer_kwargs: dict) -> None:
    """(10 - epoch) / 10 at the first batch of each epoch, as in the lesson."""
    module = make_toy_module()
    trainer = pl.Trainer(callbacks=[TeacherForcingScheduler()], max_epochs=12, **trainer_kwargs)
    trainer.fit(module)
    seen = train_values(module)
    for epoch in range(12):
        assert only(seen[epoch * 15]) == pytest.approx(max(0, (10 - epoch) / 10), abs=1e-12)


def test_epoch_granularity_is_the_lesson_step_function(trainer_kwargs: dict) -> None:
    module = make_toy_module()
    callback = TeacherForcingScheduler(granularity="epoch")
    trainer = pl.Trainer(
        callbacks=[callback], max_epochs=12, accumulate_grad_batches=2, **trainer_kwargs
    )
    trainer.fit(module)
    seen = train_values(module)
    for epoch in range(12):
        values = [only(seen[s]) for s in range(8 * epoch, 8 * epoch + 8)]  # 8 steps per epoch
        assert values == pytest.approx([max(0.0, (10 - epoch) / 10)] * 8, abs=1e-12)


@pytest.mark.parametrize(
    ("shape", "start", "end", "expected_mid"),
    [("cosine", 1.0, 0.0, 0.5), ("exponential", 0.8, 0.2, 0.4), ("linear", 1.0, 0.5, 0.75)],
)
def test_shapes(
    trainer_kwargs: dict, shape: str, start: float, end: float, expected_mid: float
) -> None:
    module = make_toy_module()
    callback = TeacherForcingScheduler(start=start, end=end, steps=10, shape=shape)
    pl.Trainer(callbacks=[callback], max_epochs=1, **trainer_kwargs).fit(module)
    seen = train_values(module)
    values = [only(seen[s]) for s in range(15)]
    assert values[0] == start and values[10] == end and values[14] == end
    assert values[5] == pytest.approx(expected_mid)
    assert all(a >= b for a, b in itertools.pairwise(values)), "monotone decay"


def test_zero_outside_training_batches(trainer_kwargs: dict) -> None:
    module = make_toy_module()
    callback = TeacherForcingScheduler(start=1.0, end=0.5, epochs=4)
    settings = {**trainer_kwargs, "num_sanity_val_steps": 2, "limit_val_batches": 3}
    trainer = pl.Trainer(callbacks=[callback], max_epochs=2, val_check_interval=5, **settings)
    trainer.fit(module)
    for run in (trainer.validate, trainer.test, trainer.predict):
        module.pr_force = 0.7  # left over from elsewhere: evaluation must still see 0.0
        run(module)
    stages = {stage for stage, _, _ in module.seen_pr_force}
    assert stages == {"train", "validate", "test", "predict"}
    evaluated = [v for stage, _, v in module.seen_pr_force if stage != "train"]
    # Sanity check 2, validation 3 batches x 6 (3 per epoch x 2 epochs), validate 3, test 15,
    # predict 15.
    assert len(evaluated) == 2 + 3 * 6 + 3 + 15 + 15
    assert set(evaluated) == {0.0}
    assert min(v for stage, _, v in module.seen_pr_force if stage == "train") > 0.5
    assert module.pr_force == 0.0


def test_logged_as_train_attr(trainer_kwargs: dict) -> None:
    module = make_toy_module()
    trainer = pl.Trainer(
        callbacks=[TeacherForcingScheduler(epochs=2)],
        max_epochs=1,
        log_every_n_steps=1,
        **trainer_kwargs,
    )
    trainer.fit(module)
    assert trainer.callback_metrics["train/pr_force"].item() == pytest.approx(1 - 14 / 30)


def test_teacher_forcing_raises_naming_missing_attribute(trainer_kwargs: dict) -> None:
    module = make_toy_module()
    with pytest.raises(AttributeError, match="ToyRegression has no attribute 'p_teacher'"):
        pl.Trainer(callbacks=[TeacherForcingScheduler(attr="p_teacher")], **trainer_kwargs).fit(
            module
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": "step"}, r"valid: \['cosine', 'exponential', 'linear'\]"),
        ({"shape": "exponential"}, "needs start > 0 and end > 0"),
        ({"start": 1.5}, "start=1.5"),
        ({"epochs": 0}, "epochs=0"),
        ({"steps": 2.5}, "steps=2.5"),
        ({"attr": "pr-force"}, "attr='pr-force'"),
        ({"granularity": "batch"}, r"valid: \['step', 'epoch'\]"),
    ],
)
def test_teacher_forcing_raises_on_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TeacherForcingScheduler(**kwargs)


@pytest.mark.parametrize("crash_step", [3, 8, 13])
def test_teacher_forcing_resume_continues_exact_sequence(
    trainer_kwargs: dict, tmp_path: Path, crash_step: int
) -> None:
    def make_callbacks() -> list:
        return [OneCycleScheduler(max_lr=0.1), TeacherForcingScheduler(epochs=3, shape="cosine")]

    full, resumed = run_with_crash(trainer_kwargs, tmp_path, crash_step, make_callbacks)
    full_values, resumed_values = train_values(full.module), train_values(resumed.module)
    assert sorted(resumed_values) == list(range(crash_step, 24))
    for step, values in resumed_values.items():
        assert values == full_values[step], f"step {step}"
    assert len({only(v) for v in resumed_values.values()}) == 24 - crash_step, "one value a step"


def test_teacher_forcing_resume_keeps_checkpoint_length(
    trainer_kwargs: dict, tmp_path: Path
) -> None:
    checkpoints = ModelCheckpoint(tmp_path, "{step}", every_n_train_steps=1, save_top_k=-1)
    with pytest.raises(SimulatedCrash):
        pl.Trainer(
            callbacks=[TeacherForcingScheduler(epochs=2), checkpoints, CrashAt(7)],
            max_epochs=2,
            **{**trainer_kwargs, "enable_checkpointing": True},
        ).fit(make_toy_module())
    module = make_toy_module()
    trainer = pl.Trainer(
        callbacks=[TeacherForcingScheduler(epochs=2)], **{**trainer_kwargs, "max_epochs": 2}
    )
    trainer.fit(module, ckpt_path=tmp_path / "step=7.ckpt")  # same settings: no warning, same T
    assert train_values(module)[7] == {1 - 7 / 30}

    module = make_toy_module()
    trainer = pl.Trainer(
        callbacks=[TeacherForcingScheduler(epochs=2)],
        **{**trainer_kwargs, "max_epochs": 2, "accumulate_grad_batches": 3},
    )
    with pytest.warns(
        UserWarning, match="checkpoint's schedule lasts 30 optimizer steps, this run would give 10"
    ):
        trainer.fit(module, ckpt_path=tmp_path / "step=7.ckpt")
    assert train_values(module)[7] == {1 - 7 / 30}


def test_teacher_forcing_raises_on_iterable_data_without_steps(trainer_kwargs: dict) -> None:
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for _ in range(8):
                x = torch.randn(7)
                yield x, x.sum(0, keepdim=True)

    module = make_toy_module()
    module.train_dataloader = lambda: torch.utils.data.DataLoader(Stream(), batch_size=4)
    trainer = pl.Trainer(callbacks=[TeacherForcingScheduler()], max_steps=4, **trainer_kwargs)
    with pytest.raises(
        ValueError, match="iterable dataset has no known steps per epoch; pass steps"
    ):
        trainer.fit(module)
    module.pr_force = 0.0
    trainer = pl.Trainer(
        callbacks=[TeacherForcingScheduler(steps=4)], max_steps=4, **trainer_kwargs
    )
    trainer.fit(module)
    assert only(train_values(module)[3]) == pytest.approx(0.25)
