"""The benches' own logic, without training: rank correlation, the default picks, the run log
that lets a 15-minute-per-run comparison continue in a later sitting, and the peer's token count
read from a Joey NMT log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from tests.conftest import REPO_ROOT

sys.path.append(str(REPO_ROOT / "bench"))  # last: bench/knn.py must not shadow anything
import peer_joey
import seq2seq_seeds
import study_budget

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
    log.write_text(log.read_text() + '{"key": {"minu\n')  # a line cut off mid-write
    assert seq2seq_seeds.run_seed(15.0, "seq2seq_tuned", 1, ["a=1"], log) == first
    assert len(calls) == 3


def test_both_benches_name_a_trial_the_same_way() -> None:
    """The seeds bench's --trial and the budget bench pass one override list: shared log keys."""
    params = {"model.net.enc_locked_out": 0.2, "model.net.dec_word_drop": 0.1 + 1e-12}
    assert seq2seq_seeds.trial_overrides(params) == [
        "model.net.enc_locked_out=0.2",
        "model.net.dec_word_drop=0.1",
    ]


JOEY_LOG = """\
2026-12-05 18:00:00,000 - INFO - joeynmt.training - EPOCH 1
2026-12-05 18:00:30,500 - INFO - joeynmt.training - Epoch   1, total training loss: 9.1, \
num. of seqs: 8900, num. of tokens: 80000, 30.0000[sec]
2026-12-05 18:00:31,000 - INFO - joeynmt.training - EPOCH 2
2026-12-05 18:00:40,500 - INFO - joeynmt.training - Interrupt at epoch 2, step 108.
"""


def test_the_peers_tokens_per_second_counts_finished_and_interrupted_epochs(
    tmp_path: Path,
) -> None:
    log = tmp_path / "train.log"
    log.write_text(JOEY_LOG)
    # 72 steps per epoch, 81,000 tokens per epoch from the data: 80,000 logged + 36 steps more
    result = peer_joey.throughput(log, per_epoch=72, epoch_tokens=81_000)
    assert result["epochs"] == 2 and result["steps"] == 108 and result["train_seconds"] == 40.5
    assert result["train_tokens_per_s"] == round((80_000 + 36 * 81_000 / 72) / 40.5, 1)


def test_the_peers_data_and_config_follow_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "train.fr").write_text("où est-il ?\n" + "mot " * 31 + "\n")
    (tmp_path / "train.en").write_text("where is he ?\nwhy ?\n")
    assert peer_joey.epoch_size(tmp_path) == (1, 5)  # the 31-word source is filtered out
    config = yaml.safe_load(peer_joey.joey_config(tmp_path, tmp_path / "m", 72, 1))  # as Joey
    training = config["training"]
    for key in ("learning_rate", "learning_rate_min", "clip_grad_norm", "label_smoothing"):
        assert isinstance(training[key], float), (key, training[key])  # not the string "1e-08"
    assert training["learning_rate_min"] == 1e-8
    assert config["training"]["validation_freq"] == 72 == config["training"]["logging_freq"]
    enc, dec = config["model"]["encoder"], config["model"]["decoder"]
    assert (enc["hidden_size"], enc["num_layers"], enc["bidirectional"]) == (256, 2, True)
    assert enc["embeddings"]["dropout"] == 0.15 and dec["hidden_dropout"] == 0.35
    assert dec["attention"] == "bahdanau" and config["model"]["tied_softmax"] is True


def test_joey_hears_the_interrupt_even_when_started_from_a_background_job() -> None:
    """A shell's background job ignores SIGINT and passes that on: the peer's process gets the
    default back, so the SIGINT that ends its budget stops it."""
    import signal
    import subprocess
    import sys

    ask = (
        "import signal; h = signal.getsignal(signal.SIGINT); print(h is signal.default_int_handler)"
    )
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `cmd &` starts a process
    try:
        inherited = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True)
        restored = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True,
                                  preexec_fn=peer_joey.answer_sigint)  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, before)
    assert inherited.stdout.strip() == "False"  # still ignored: Python installs no handler
    assert restored.stdout.strip() == "True"  # Ctrl-C and SIGINT raise KeyboardInterrupt
