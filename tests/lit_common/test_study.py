"""`python -m lit_common.study`: importance by fANOVA and by impurity on a study with a known
answer, the JSON and figures, and one-line errors for a wrong storage, study or trial count."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from lit_common import study as study_cli

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_study(path: Path, n_trials: int) -> str:
    """A study whose objective depends strongly on `a`, weakly on `b` and not at all on `c`."""
    storage = f"sqlite:///{path}"
    study = optuna.create_study(study_name="known", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_float("a", 0.0, 1.0)
        b = trial.suggest_float("b", 0.0, 1.0, step=0.25)
        trial.suggest_categorical("c", ["x", "y"])
        return 10.0 * a + b

    study.optimize(objective, n_trials=n_trials)
    return storage


def test_importance_ranks_the_setting_that_matters_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = make_study(tmp_path / "s.db", 40)
    code = study_cli.main(["--storage", storage, "--study", "known", "--out", str(tmp_path / "f")])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["completed_trials"] == 40 and result["failed_trials"] == 0
    rho = result["rank_correlation"]
    assert rho["a"] > 0.9 and abs(rho["b"]) < rho["a"] and "c" not in rho  # c is categorical
    top = result["top_trials"]
    assert len(top) == 5 and top[0]["trial"] == result["best_trial"]
    assert [t["value"] for t in top] == sorted((t["value"] for t in top), reverse=True)
    assert result["direction"] == "maximize"
    best = optuna.load_study(study_name="known", storage=storage).best_trial
    assert (result["best_trial"], result["best_value"]) == (best.number, best.value)
    assert result["best_params"] == best.params
    for key in ("importance_fanova", "importance_mdi"):
        scores = result[key]
        assert set(scores) == {"a", "b", "c"}
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-3)
        assert scores["a"] > 0.8 and scores["a"] > scores["b"] >= scores["c"]
    assert list(result["importance_fanova"]) == ["a", "b", "c"]  # decreasing importance
    names = sorted(Path(figure).name for figure in result["figures"])
    assert names == ["importance.png", "importance_mdi.png", "slice.png"]
    for figure in result["figures"]:
        assert Path(figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    assert study_cli.main(["--storage", missing, "--study", "known"]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --storage {missing}: no such file {tmp_path / 'nope.db'}\n"
    )
    assert not (tmp_path / "nope.db").exists()  # no empty database left behind
    storage = make_study(tmp_path / "one.db", 1)
    assert study_cli.main(["--storage", storage, "--study", "other"]) == 2
    assert capsys.readouterr().err == f"error: --study 'other' not in {storage}; valid: ['known']\n"
    assert study_cli.main(["--storage", storage, "--study", "known"]) == 2
    assert "has 1 completed trial(s); importance needs at least 2" in capsys.readouterr().err
    not_a_db = tmp_path / "text.db"
    not_a_db.write_text("hello")
    assert study_cli.main(["--storage", f"sqlite:///{not_a_db}", "--study", "known"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --storage sqlite:///{not_a_db}: ") and err.count("\n") == 1
