"""The study benches' own logic, without training: rank correlation, the default picks, and the
run log that lets a 15-minute-per-run comparison continue in a later sitting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import seq2seq_seeds  # noqa: E402
import study_budget  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_spearman_on_known_orders_and_ties() -> None:
    assert study_budget.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert study_budget.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert study_budget.ranks([5.0, 1.0, 5.0, 3.0]) == [3.5, 1.0, 3.5, 2.0]
    # one swap of neighbours among 4: 1 - 6 * 2 / (4 * 15) = 0.8
    assert study_budget.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == 0.8


def test_default_picks_are_the_reference_four_best_and_the_worst(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    for value in [50.0, 40.0, 48.0, 30.0, 49.0, 45.0, 47.0, 44.0]:
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}))
    assert study_budget.default_trials(study) == [0, 4, 2, 6, 5, 3]


def test_a_logged_run_is_read_back_not_trained_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        seed = int(next(c for c in cmd if c.startswith("seed=")).split("=")[1])
        out = json.dumps({"valid_bleu": 40.0 + seed, "test_bleu": 39.0})
        return subprocess.CompletedProcess(cmd, 0, stdout=f"progress\n{out}\n", stderr="")

    monkeypatch.setattr(seq2seq_seeds.subprocess, "run", fake_run)
    log = tmp_path / "runs.jsonl"
    first = seq2seq_seeds.run_seed(15.0, "seq2seq_tuned", 1, ["a=1"], log)
    again = seq2seq_seeds.run_seed(15.0, "seq2seq_tuned", 1, ["a=1"], log)
    other = seq2seq_seeds.run_seed(15.0, "seq2seq_tuned", 1, ["a=2"], log)  # another setting
    assert first == again == {"valid_bleu": 41.0, "test_bleu": 39.0} and other == first
    assert len(calls) == 2 and calls[1][-1] == "a=2"
    assert len(log.read_text().splitlines()) == 2
    seq2seq_seeds.run_seed(15.0, "seq2seq_tuned", 2, ["a=1"])  # no log: always trained
    assert len(calls) == 3
