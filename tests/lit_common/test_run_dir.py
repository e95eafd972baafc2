"""lit_common/run_dir.py: a run directory used again keeps the earlier run's saved config, and
only the first process of a run moves it."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lit_common.run_dir import RANK_VARIABLES, KeepEarlierConfig, first_process, keep_earlier


def saved_run(run: Path, text: str) -> None:
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(text)


def test_an_earlier_config_is_moved_to_the_first_free_slot(tmp_path: Path) -> None:
    assert keep_earlier(tmp_path) is None  # a new directory: nothing to keep
    saved_run(tmp_path, "first")
    assert keep_earlier(tmp_path) == tmp_path / ".hydra.1"
    saved_run(tmp_path, "second")
    assert keep_earlier(tmp_path) == tmp_path / ".hydra.2"
    assert (tmp_path / ".hydra.1" / "config.yaml").read_text() == "first"
    assert (tmp_path / ".hydra.2" / "config.yaml").read_text() == "second"
    assert not (tmp_path / ".hydra").exists()


def test_only_the_first_process_moves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = OmegaConf.create({"hydra": {"run": {"dir": str(tmp_path)}, "output_subdir": ".hydra"}})
    saved_run(tmp_path, "rank 0 of this run wrote this")
    monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP child started with the same directory
    assert not first_process()
    child = config.copy()
    KeepEarlierConfig().on_run_start(child)
    assert (tmp_path / ".hydra" / "config.yaml").is_file()
    assert child.hydra.output_subdir is None  # it writes no config of its own to race rank 0
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert first_process()
    KeepEarlierConfig().on_run_start(config)
    assert (tmp_path / ".hydra.1" / "config.yaml").read_text() == "rank 0 of this run wrote this"
    assert capsys.readouterr().out == (
        f"note: {tmp_path} held an earlier run; its config is kept in {tmp_path / '.hydra.1'}\n"
    )
