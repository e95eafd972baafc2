"""The Optuna sweeper: Hydra's sweep grammar as Optuna distributions, and what happens to a trial
whose job fails, stops the program, or returns no number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lit_common.errors import InputError
from lit_common.sweeper import JobStopped, OptunaSweeper, search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_sweep_grammar_becomes_optuna_distributions() -> None:
    params = {
        "a": "interval(0.1, 0.5)",
        "b": "tag(log, interval(0.0001, 0.01))",
        "c": "range(0.0, 0.6, 0.1)",
        "d": "range(1, 10, 3)",
        "e": "choice(gru, lstm)",
        "f": "interval(2, 8)",
    }
    space, fixed = search_space(params, ["x=1", "a=interval(0.2, 0.3)", "g=choice(0, 1)"])
    assert fixed == ["x=1"]
    assert space["a"] == FloatDistribution(0.2, 0.3)  # the command line wins
    assert space["b"] == FloatDistribution(0.0001, 0.01, log=True)
    assert space["c"] == FloatDistribution(0.0, 0.5, step=0.1)  # stop excluded, as Hydra's range
    assert space["d"] == IntDistribution(1, 7, step=3)
    assert space["e"] == CategoricalDistribution(["gru", "lstm"])
    assert space["f"] == FloatDistribution(2.0, 8.0)  # Hydra reads interval ends as floats
    assert space["g"] == CategoricalDistribution([0, 1])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("range(0.5, 0.1, 0.1)", r"a: range\(0.5, 0.1, 0.1\) is empty"),
        ("range(5, 1, -1)", r"a: range\(5, 1, -1\): the step must be > 0"),
        ("interval(0.5, 0.5)", r"a: interval\(0.5, 0.5\) is empty"),
        ("tag(int, interval(1, 8))", r"a: tags \['int'\] not understood; valid: tag\(log"),
        ("0.3", r"a=0.3: not a search space; valid: interval"),
    ],
)
def test_empty_search_spaces_are_refused(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        search_space({"a": value}, [])


def test_settings_are_checked() -> None:
    with pytest.raises(
        InputError, match=r"direction='up' unknown; valid: \['maximize', 'minimize'\]"
    ):
        OptunaSweeper(direction="up")
    with pytest.raises(InputError, match="n_trials=0: expected an int >= 1"):
        OptunaSweeper(n_trials=0)
    with pytest.raises(InputError, match="a pruner would never stop one; leave it null"):
        OptunaSweeper(pruner={"_target_": "optuna.pruners.MedianPruner"})


class FakeLauncher:
    """Stands in for Hydra's launcher: each job returns the next outcome."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.launched: list[tuple[tuple[str, ...], int]] = []

    def launch(self, batch: list[tuple[str, ...]], initial_job_idx: int) -> list[JobReturn]:
        self.launched.append((batch[0], initial_job_idx))
        outcome = self.outcomes.pop(0)
        ret = JobReturn()
        if isinstance(outcome, BaseException):
            ret.status, ret._return_value = JobStatus.FAILED, outcome
        else:
            ret.status, ret._return_value = JobStatus.COMPLETED, outcome
        return [ret]


def make_sweeper(tmp_path: Path, outcomes: list[Any], **kwargs: Any) -> tuple[OptunaSweeper, Any]:
    sweeper = OptunaSweeper(
        storage=f"sqlite:///{tmp_path / 'sub' / 's.db'}",  # the folder does not exist yet
        study_name="s",
        params={"lr": "range(1, 4, 1)"},
        sampler={"_target_": "optuna.samplers.RandomSampler", "seed": 0},
        **kwargs,
    )
    launcher = FakeLauncher(outcomes)
    sweeper.launcher, sweeper.sweep_dir = launcher, str(tmp_path / "sweep")
    sweeper.validate_batch_is_legal = lambda batch: None  # type: ignore[method-assign]
    return sweeper, launcher


def test_failed_jobs_are_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    outcomes = [1.0, RuntimeError("diverged"), None, float("nan"), 3.0]
    sweeper, launcher = make_sweeper(tmp_path, outcomes, n_trials=5,
                                     enqueue=[{"lr": 2}])  # fmt: skip
    sweeper.sweep(["trainer.max_epochs=1"])
    study = optuna.load_study(study_name="s", storage=sweeper.storage)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "FAIL", "FAIL", "COMPLETE"]
    assert study.trials[0].params == {"lr": 2}  # the queued reference comes first
    assert [idx for _, idx in launcher.launched] == [0, 1, 2, 3, 4]  # job folder = trial number
    assert launcher.launched[0][0] == ("trainer.max_epochs=1", "lr=2")
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert results.best_value == 3.0 and results.best_trial == 4
    # a second sweep continues the study: numbers go on, the reference is not queued again
    sweeper2, launcher2 = make_sweeper(tmp_path, [2.0], n_trials=1, enqueue=[{"lr": 2}])
    sweeper2.sweep([])
    assert [idx for _, idx in launcher2.launched] == [5]
    assert len(optuna.load_study(study_name="s", storage=sweeper.storage).trials) == 6


def test_a_job_that_stops_the_program_fails_its_trial_then_stops_the_sweep(
    tmp_path: Path,
) -> None:
    sweeper, _ = make_sweeper(tmp_path, [JobStopped("error: bad setting"), 1.0], n_trials=2)
    with pytest.raises(SystemExit, match="error: bad setting"):
        sweeper.sweep([])
    study = optuna.load_study(study_name="s", storage=sweeper.storage)
    assert [t.state.name for t in study.trials] == ["FAIL"]  # nothing left running


def test_the_shipped_searches_parse() -> None:
    for name in ("seq2seq_awd", "seq2seq_optuna", "devise_optuna"):
        config = OmegaConf.load(
            Path(__file__).parents[2] / "configs" / "hparams_search" / f"{name}.yaml"
        )
        space, _ = search_space(config.hydra.sweeper.params, [])
        assert space, name
    awd, _ = search_space(
        OmegaConf.load(Path(__file__).parents[2] / "configs/hparams_search/seq2seq_awd.yaml")
        .hydra.sweeper.params, []
    )  # fmt: skip
    assert awd["model.net.enc_embed_drop"] == FloatDistribution(0.0, 0.2, step=0.05)
    assert all(d.low == 0.0 for d in awd.values())  # every regulariser can be off


def test_a_continued_study_does_not_repeat_the_first_sweeps_random_trials(tmp_path: Path) -> None:
    def sweeper_for(n: int) -> OptunaSweeper:
        sweeper = OptunaSweeper(
            storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s", n_trials=n,
            params={"x": "interval(0.0, 1.0)"},
            sampler={"_target_": "optuna.samplers.TPESampler", "seed": 7, "n_startup_trials": 10},
        )  # fmt: skip
        sweeper.launcher, sweeper.sweep_dir = FakeLauncher([0.5] * n), str(tmp_path)
        sweeper.validate_batch_is_legal = lambda batch: None  # type: ignore[method-assign]
        return sweeper

    sweeper_for(2).sweep([])
    sweeper_for(2).sweep([])
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    xs = [t.params["x"] for t in study.trials]
    assert len(xs) == 4 and len(set(xs)) == 4, xs


def test_n_jobs_launches_consecutive_trials_together(tmp_path: Path) -> None:
    sweeper, _ = make_sweeper(tmp_path, [1.0, 2.0, 3.0], n_trials=3, n_jobs=2)
    sweeper.launcher = BatchLauncher([1.0, 2.0, 3.0])
    sweeper.sweep([])
    assert sweeper.launcher.batches == [(2, 0), (1, 2)]  # (jobs, first job number)
    study = optuna.load_study(study_name="s", storage=sweeper.storage)
    assert [t.value for t in study.trials] == [1.0, 2.0, 3.0]


def test_an_interrupt_leaves_no_trial_running(tmp_path: Path) -> None:
    sweeper, _ = make_sweeper(tmp_path, [], n_trials=4, n_jobs=2)
    sweeper.launcher = BatchLauncher([KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        sweeper.sweep([])
    study = optuna.load_study(study_name="s", storage=sweeper.storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]


class BatchLauncher:
    """A launcher that takes a whole batch per launch; an exception outcome is raised."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.batches: list[tuple[int, int]] = []

    def launch(self, batch: list[tuple[str, ...]], initial_job_idx: int) -> list[JobReturn]:
        self.batches.append((len(batch), initial_job_idx))
        returns = []
        for _ in batch:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            ret = JobReturn()
            ret.status, ret._return_value = JobStatus.COMPLETED, outcome
            returns.append(ret)
        return returns
