"""A Hydra sweeper that runs an Optuna study: ``python train.py -m hparams_search=<name>``.

Why not the ``hydra-optuna-sweeper`` plugin: its release pins Optuna 2.10, whose SQLite storage
fails under SQLAlchemy 2 and whose fANOVA importance fails under current scikit-learn, and its
Optuna-4 pre-release needs an unreleased Hydra. This sweeper keeps that plugin's settings
(``hydra.sweeper.storage``, ``study_name``, ``n_trials``, ``n_jobs``, ``direction``, ``sampler``,
``params`` in Hydra's sweep grammar) on current Optuna:

- a study lives in ``storage`` (``sqlite:///FILE``, ``journal:///FILE``, any RDB URL, or null for
  memory: ``lit_common.storage``) and is loaded when it exists, so a sweep interrupted or run
  again, in another session or on another machine with the same file, adds ``n_trials`` new
  trials to the same study; several sweeps at once on one journal file or RDB share the study
  (each asks for its own trials);
- each trial is one Hydra job, numbered by its trial number (``hydra.job.num``), so the job
  folders of a resumed study do not collide;
- a job that fails is told to the study as failed and the sweep goes on; a job that stops the
  program (a bad setting: one ``error:`` line) or an interrupt stops the sweep, and every trial
  it had asked for and not finished is told as failed (none is left "running" in the storage);
- a seeded sampler is seeded anew from the number of trials so far, so a continued study does not
  repeat the first sweep's random trials;
- ``optimization_results.yaml`` in the sweep folder holds the study's best trial so far, written
  after every trial.

Search spaces use Hydra's grammar: ``interval(a, b)`` (uniform float: Hydra reads its ends as
floats), ``tag(log, interval(a, b))`` (log-uniform), ``range(start, stop, step)`` (a stepped grid,
``stop`` excluded, as Hydra's ``range``; ints when all three are ints), ``choice(a, b, ...)``
(categorical). Sweep overrides on
the command line add to or replace ``params``; plain overrides apply to every trial.

Hydra instantiates sweepers only from its ``hydra_plugins`` namespace, so ``register()`` (called by
``train.py``) files the class there under ``hydra_plugins.lit_optuna_sweeper.OptunaSweeper``, the
``_target_`` of ``configs/hydra/sweeper/optuna.yaml``.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lit_common.errors import InputError, check_choice
from lit_common.storage import open_storage

log = logging.getLogger(__name__)
PLUGIN_MODULE = "hydra_plugins.lit_optuna_sweeper"
DIRECTIONS = ("maximize", "minimize")


class JobStopped(Exception):
    """A trial's job stopped the program (``SystemExit``); carried past Hydra's launcher, which
    only records ``Exception``s, so the sweeper can mark the trial failed before stopping."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code


def _catch_exit(task_function: TaskFunction) -> TaskFunction:
    @functools.wraps(task_function)
    def task(cfg: DictConfig) -> Any:
        try:
            return task_function(cfg)
        except SystemExit as err:
            raise JobStopped(err.code) from None

    return task


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override (``interval``, ``range``, ``choice``)."""
    import optuna.distributions as d

    value = override.value()
    key = override.get_key_element()
    tags = set(getattr(value, "tags", ()) or ())
    if tags - {"log"} or (tags and not isinstance(value, IntervalSweep)):
        raise InputError(
            f"{key}: tags {sorted(tags)} not understood; valid: tag(log, interval(a, b))"
        )
    if isinstance(value, ChoiceSweep):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return d.CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        assert start is not None and stop is not None and step is not None
        if step <= 0:
            raise InputError(f"{key}: range({start}, {stop}, {step}): the step must be > 0")
        if stop <= start:
            raise InputError(f"{key}: range({start}, {stop}, {step}) is empty")
        if all(isinstance(v, int) for v in (start, stop, step)):
            last = start + (stop - start - 1) // step * step
            return d.IntDistribution(int(start), int(last), step=int(step))
        n = math.ceil((stop - start) / step - 1e-9)  # values start + i * step < stop
        last = round(start + (n - 1) * step, 12)
        return d.FloatDistribution(float(start), float(last), step=float(step))
    if isinstance(value, IntervalSweep):
        start, end = value.start, value.end
        assert start is not None and end is not None
        if end <= start:
            raise InputError(f"{key}: interval({start}, {end}) is empty")
        return d.FloatDistribution(float(start), float(end), log="log" in tags)
    raise InputError(
        f"{key}={override.get_value_element_as_str()}: not a search space; valid: "
        "interval(a, b), tag(log, interval(a, b)), range(start, stop, step), choice(a, ...)"
    )


def search_space(
    params: Mapping[str, str] | None, arguments: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """``params`` and the command line's sweep overrides as distributions by key, and the
    command line's plain overrides (applied to every trial)."""
    parser = OverridesParser.create()
    space: dict[str, Any] = {}
    fixed: list[str] = []
    configured = [f"{key}={value}" for key, value in (params or {}).items()]
    for override in parser.parse_overrides(configured):
        space[override.get_key_element()] = distribution(override)
    for override in parser.parse_overrides(list(arguments)):
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution(override)
        else:
            fixed.append(override.input_line or "")
    return space, fixed


class OptunaSweeper(Sweeper):
    """Run ``n_trials`` trials of an Optuna study, each a Hydra job that returns the value to
    optimise (``train.main`` returns ``optimized_metric``).

    Args:
        sampler: an Optuna sampler, or its ``_target_`` config (e.g. ``TPESampler`` with a
            seed); null: Optuna's default.
        pruner: must stay null: each trial is a whole Hydra job that reports only its final
            value, so an Optuna pruner would never stop one; refused rather than ignored.
        direction: ``maximize`` or ``minimize``.
        storage: an Optuna storage URL (``lit_common.storage``: ``sqlite:///FILE`` resumes a
            study, ``journal:///FILE`` or an RDB URL also shares it with workers running at
            once); null keeps the study in memory for this sweep only.
        study_name: the study in ``storage`` to create or continue.
        n_trials: new trials this sweep runs.
        n_jobs: trials asked for at once and handed to the launcher in one launch (a parallel
            launcher runs them side by side; the basic launcher one after another).
        params: search space, key -> Hydra sweep grammar (module docstring).
        enqueue: settings (key -> value) to try first, once per study: queued when the study is
            created, e.g. the recipe the search starts from, as a reference trial.
    """

    def __init__(
        self,
        sampler: Any = None,
        pruner: Any = None,
        direction: str = "maximize",
        storage: str | None = None,
        study_name: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        params: Mapping[str, str] | None = None,
        enqueue: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        check_choice("hydra.sweeper.direction", direction, DIRECTIONS)
        if pruner is not None:
            raise InputError(
                "hydra.sweeper.pruner: each trial reports only its final value, so a pruner "
                "would never stop one; leave it null"
            )
        for key, number in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise InputError(f"hydra.sweeper.{key}={number!r}: expected an int >= 1")
        self.sampler = sampler
        self.direction, self.storage, self.study_name = direction, storage, study_name
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.params = dict(params or {})
        self.enqueue = [dict(settings) for settings in enqueue or ()]
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None  # Hydra's launcher, made in ``setup``
        self.sweep_dir = "."  # hydra.sweep.dir, known in ``setup``

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=_catch_exit(task_function), config=config
        )
        self.sweep_dir = str(config.hydra.sweep.dir)

    def study(self) -> Any:
        """The study in ``storage``, created when new, else continued.

        A seeded sampler is seeded with ``seed + number of trials so far``: a continued study
        would otherwise draw its random start-up trials again, the same as the first sweep's.
        """
        import optuna

        study = optuna.create_study(
            study_name=self.study_name,
            storage=open_storage(self.storage),
            direction=self.direction,
            load_if_exists=True,
        )
        sampler = self.sampler
        if isinstance(sampler, (dict, DictConfig)):
            sampler = OmegaConf.to_container(OmegaConf.create(dict(sampler)), resolve=True)
            if isinstance(sampler.get("seed"), int) and study.trials:  # type: ignore[union-attr]
                sampler["seed"] += len(study.trials)  # type: ignore[index]
        if sampler is not None:
            study.sampler = _build(sampler)
        return study

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        space, fixed = search_space(self.params, arguments)
        if not space:
            raise InputError("hydra.sweeper.params is empty: nothing to search")
        study = self.study()
        if not study.trials:  # a new study: its reference trials first
            for settings in self.enqueue:  # once, when several workers start together
                study.enqueue_trial(settings, skip_if_exists=True)
        done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
        log.info(
            f"Study {study.study_name!r} ({self.storage or 'in memory'}): {done} completed "
            f"trials; {self.n_trials} more over {sorted(space)}"
        )
        remaining = self.n_trials
        while remaining > 0:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, remaining))]
            remaining -= len(trials)
            self._run(study, trials, fixed)
        self._write_results(study)

    def _run(self, study: Any, trials: list[Any], fixed: list[str]) -> None:
        """Launch ``trials`` as one batch (their job numbers are their trial numbers, so one
        launch each unless the numbers run on) and tell the study each outcome; whatever
        happens, no asked trial is left running in the storage."""
        import optuna

        untold = {trial.number: trial for trial in trials}
        try:
            batch = [
                (*fixed, *(f"{key}={_clean(value)}" for key, value in trial.params.items()))
                for trial in trials
            ]
            self.validate_batch_is_legal(batch)
            numbers = [trial.number for trial in trials]
            if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
                groups = [(batch, numbers[0], trials)]
            else:  # another worker took numbers in between
                groups = [([b], t.number, [t]) for b, t in zip(batch, trials, strict=True)]
            for overrides, first, group in groups:
                results = self.launcher.launch(overrides, initial_job_idx=first)
                for trial, result in zip(group, results, strict=True):
                    self._tell(study, trial, result)
                    untold.pop(trial.number)
                    self._write_results(study)
        finally:
            for trial in untold.values():
                study.tell(trial, state=optuna.trial.TrialState.FAIL)

    @staticmethod
    def _tell(study: Any, trial: Any, result: Any) -> None:
        import optuna

        try:
            value = result.return_value  # re-raises the job's exception
        except JobStopped as stop:  # the job stopped the program: so does the sweep
            raise SystemExit(stop.code) from None
        except Exception as err:  # one bad trial (diverged, out of memory) does not end a study
            log.warning(f"Trial {trial.number} failed: {type(err).__name__}: {err}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            log.warning(f"Trial {trial.number} returned {value!r}: recorded as failed")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        study.tell(trial, number)
        log.info(f"Trial {trial.number}: {number:.4f} with {trial.params}")

    def _write_results(self, study: Any) -> None:
        try:
            best = study.best_trial
        except ValueError:  # no completed trial yet
            log.warning(f"Study {study.study_name!r} has no completed trial")
            return
        results = {
            "name": "optuna",
            "study_name": study.study_name,
            "storage": self.storage,
            "best_trial": best.number,
            "best_params": best.params,
            "best_value": best.value,
        }
        path = Path(self.sweep_dir) / "optimization_results.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), path)
        log.info(f"Best trial {best.number}: {best.value:.4f} with {best.params} ({path})")


def _build(part: Any) -> Any:
    """An Optuna sampler from its ``_target_`` config; an object or None as it is."""
    return instantiate(part) if isinstance(part, (dict, DictConfig)) else part


def _clean(value: Any) -> Any:
    """A stepped float without its binary noise (0.30000000000000004 -> 0.3) for the job's
    override; the study keeps Optuna's value."""
    return round(value, 10) if isinstance(value, float) else value


def register() -> None:
    """File ``OptunaSweeper`` with Hydra's plugins as ``hydra_plugins.lit_optuna_sweeper``: Hydra
    instantiates sweepers only from that namespace, by importing the ``_target_`` path."""
    try:
        importlib.import_module("hydra_plugins")
    except ImportError:  # no Hydra plugin installed: no namespace package either
        package = types.ModuleType("hydra_plugins")
        package.__path__ = []
        sys.modules["hydra_plugins"] = package
    module = types.ModuleType(PLUGIN_MODULE, "Alias of lit_common.sweeper for Hydra.")
    module.OptunaSweeper = OptunaSweeper  # type: ignore[attr-defined]
    sys.modules[PLUGIN_MODULE] = module
    OptunaSweeper.__module__ = PLUGIN_MODULE
    Plugins.instance().register(OptunaSweeper)
