"""What an Optuna study found: each setting's importance, the best trial, and three figures.

    python -m lit_common.study --storage sqlite:///FILE --study NAME [--out DIR] [--seed N]

Works on any model's study (``hparams_search=...`` with a storage). Importance is Optuna's
(``optuna.importance``): fANOVA (Hutter et al. 2014) over a random forest fitted to the completed
trials, and the forest's mean decrease in impurity; both are shares that sum to 1 and say how much
of the variation of the objective each setting explains, over the region the study sampled. With
``--out`` it draws ``importance.png`` (fANOVA), ``importance_mdi.png`` (impurity) and
``slice.png`` (the objective against each setting, one point per trial: a partial-dependence
view) with Optuna's matplotlib backend. The last line printed is one JSON object: ``study``,
``direction``, ``completed_trials``, ``failed_trials``, ``best_trial``, ``best_value``,
``best_params``, ``importance_fanova``, ``importance_mdi`` (settings in decreasing fANOVA
importance), ``rank_correlation`` (Spearman's, of each numeric setting with the objective over
the completed trials: the sign says which way it moves; null for a setting that never varied),
``top_trials`` (the five best: ``trial``, ``value``, ``params``), ``figures``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_common import cli
from lit_common.errors import InputError
from lit_common.storage import open_storage, storage_file

MIN_TRIALS = 2  # a forest needs two values to split


def load(storage: str, name: str) -> Any:
    """The study ``name`` in ``storage`` (``lit_common.storage``); a missing SQLite or journal
    file or study is one ``InputError`` (Optuna would create an empty one for a mistyped path)."""
    import optuna

    path = storage_file(storage)
    if path is not None and not path.is_file():
        raise InputError(f"--storage {storage}: no such file {path}")
    try:
        opened = open_storage(storage, create=False)
        names = optuna.get_all_study_names(opened)
    except Exception as err:  # a URL SQLAlchemy cannot open, a file that is not a database
        first = str(err).splitlines()[0] if str(err) else ""
        raise InputError(f"--storage {storage}: {type(err).__name__}: {first}") from None
    if name not in names:
        raise InputError(f"--study {name!r} not in {storage}; valid: {sorted(names)}")
    return optuna.load_study(study_name=name, storage=opened)


def importances(study: Any, seed: int) -> dict[str, dict[str, float]]:
    """fANOVA and mean-decrease-impurity importance of each searched setting (shares of 1)."""
    from optuna.importance import (
        FanovaImportanceEvaluator,
        MeanDecreaseImpurityImportanceEvaluator,
        get_param_importances,
    )

    out = {}
    if len(study.directions) > 1:
        raise InputError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; "
            "importance here is for single-objective studies"
        )
    for key, evaluator in (
        ("fanova", FanovaImportanceEvaluator(seed=seed)),
        ("mdi", MeanDecreaseImpurityImportanceEvaluator(seed=seed)),
    ):
        try:
            scores = get_param_importances(study, evaluator=evaluator, normalize=True)
        except RuntimeError as err:  # e.g. every completed trial has the same value
            raise InputError(f"study {study.study_name!r}: {err}") from None
        if not scores:
            raise InputError(
                f"study {study.study_name!r}: no setting was searched in every completed trial "
                "(did the search space change between sweeps?)"
            )
        out[key] = {name: round(float(value), 4) for name, value in scores.items()}
    return out


def rank_correlations(study: Any) -> dict[str, float | None]:
    """Spearman's rank correlation of each numeric setting with the objective, over the
    completed trials (None where the setting or the objective never varied)."""
    import math

    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from scipy.stats import spearmanr

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    numeric = (FloatDistribution, IntDistribution)
    names = sorted({k for t in done for k, d in t.distributions.items() if isinstance(d, numeric)})
    out: dict[str, float | None] = {}
    for name in names:
        pairs = [(t.params[name], t.value) for t in done if name in t.params]
        xs, ys = zip(*pairs, strict=True) if pairs else ((), ())
        if len(set(xs)) < 2 or len(set(ys)) < 2:
            out[name] = None
            continue
        rho = float(spearmanr(xs, ys).statistic)
        out[name] = None if math.isnan(rho) else round(rho, 3)
    return out


def top_trials(study: Any, n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` best completed trials, best first."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best_first = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(done, key=lambda t: t.value, reverse=best_first)[:n]
    return [{"trial": t.number, "value": t.value, "params": t.params} for t in ranked]


def draw(study: Any, scores: dict[str, dict[str, float]], out: Path, seed: int = 0) -> list[str]:
    """Optuna's own figures, matplotlib backend: ``importance.png`` (fANOVA),
    ``importance_mdi.png`` (mean decrease in impurity), each from the evaluator and seed the
    JSON's scores come from, and ``slice.png`` (objective against each setting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
    from optuna.importance import (
        FanovaImportanceEvaluator,
        MeanDecreaseImpurityImportanceEvaluator,
    )
    from optuna.visualization.matplotlib import plot_param_importances

    out.mkdir(parents=True, exist_ok=True)
    params = list(scores["fanova"])
    paths = []
    for name, evaluator, title in (
        ("importance.png", FanovaImportanceEvaluator(seed=seed), "fANOVA"),
        (
            "importance_mdi.png",
            MeanDecreaseImpurityImportanceEvaluator(seed=seed),
            "mean decrease in impurity",
        ),
    ):
        # no params=: with it, Optuna 4's figure pairs the sorted bars with unsorted names
        ax = plot_param_importances(study, evaluator=evaluator)
        fig = ax.figure
        names = ax.yaxis.get_major_formatter()  # Optuna's, applied when the figure is drawn
        ax.yaxis.set_major_formatter(FuncFormatter(lambda x, pos, f=names: _short(f(x, pos))))
        for loc in ("left", "right"):  # Optuna's own title sits on the left
            ax.set_title("", loc=loc)
        ax.set_title(f"{study.study_name}: {title} over {completed(study)} trials")
        fig.set_size_inches(7.5, 0.35 * len(params) + 1.5)
        fig.tight_layout()
        paths.append(cli.save_figure(fig, out / name, dpi=110))
        plt.close(fig)
    fig = slice_figure(study, params)
    paths.append(cli.save_figure(fig, out / "slice.png", dpi=90))
    plt.close(fig)
    return [str(p) for p in paths]


def slice_figure(study: Any, params: list[str], columns: int = 5) -> Any:
    """Optuna's slice plot (objective against each setting, a point per trial coloured by trial
    number), its panels laid out ``columns`` to a row in order of ``params``."""
    import numpy as np
    from matplotlib.gridspec import GridSpec
    from optuna.visualization.matplotlib import plot_slice

    axes = np.atleast_1d(plot_slice(study, params=params)).ravel()
    fig = axes[0].figure
    rows = -(-len(axes) // columns)
    fig.set_size_inches(2.6 * columns + 1.2, 2.4 * rows + 0.8)
    grid = GridSpec(rows, columns, figure=fig, left=0.06, right=0.88, hspace=0.55, wspace=0.3)
    for i, ax in enumerate(axes):
        ax.set_subplotspec(grid[i // columns, i % columns])
        ax.set_position(grid[i // columns, i % columns].get_position(fig))
        ax.set_xlabel(_short(ax.get_xlabel()))
        ax.set_ylabel("objective" if i % columns == 0 else "")
    for extra in set(fig.axes) - set(axes):  # the trial-number colour bar, right of the grid
        extra.set_position((0.91, 0.15, 0.012, 0.7))
    return fig


def _short(name: str) -> str:
    """``model.net.enc_weight_drop`` -> ``enc_weight_drop``: figure labels only."""
    return name.rsplit(".", 1)[-1]


def completed(study: Any) -> int:
    """The study's completed trials (failed and running ones are not counted)."""
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def summary(study: Any, seed: int = 0, out: Path | None = None) -> dict[str, Any]:
    """The JSON the command prints (module docstring); raises ``InputError`` below
    ``MIN_TRIALS`` completed trials."""
    import optuna

    n_done = completed(study)
    if n_done < MIN_TRIALS:
        raise InputError(
            f"study {study.study_name!r} has {n_done} completed trial(s); importance needs at "
            f"least {MIN_TRIALS}"
        )
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    best = study.best_trial
    scores = importances(study, seed)
    return {
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        "completed_trials": n_done,
        "failed_trials": len(failed),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "importance_fanova": scores["fanova"],
        "importance_mdi": scores["mdi"],
        "rank_correlation": rank_correlations(study),
        "top_trials": top_trials(study),
        "figures": draw(study, scores, out, seed) if out is not None else [],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--storage", required=True, help="sqlite:///FILE, journal:///FILE or an RDB URL"
    )
    parser.add_argument("--study", required=True, help="the study's name")
    parser.add_argument(
        "--out",
        type=cli.output_dir,
        help="draw importance.png, importance_mdi.png and slice.png here",
    )
    parser.add_argument("--seed", type=int, default=0, help="the importance forests' seed")
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        result = summary(load(args.storage, args.study), args.seed, args.out)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, share in result["importance_fanova"].items():
        mdi, rho = result["importance_mdi"].get(name, 0), result["rank_correlation"].get(name)
        rho_text = f"{rho:+6.2f}" if rho is not None else "   n/a"
        print(f"{name:<32} fanova {share:6.3f}   mdi {mdi:6.3f}   rank correlation {rho_text}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
