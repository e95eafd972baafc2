"""train.py: Hydra composition, the `gpus` shortcut, and a full fit through the configs."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

import train
from callbacks import OneCycleScheduler, TeacherForcingScheduler
from tests.conftest import REPO_ROOT

TOY_MODEL = "model={_target_:tests.toy.make_toy_module,optimizer:adam,n_groups:2}"


def run_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), f"hydra.run.dir={cwd / 'run'}", *overrides]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def compose_train(tmp_path: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(REPO_ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        del cfg.hydra
    train.resolve_gpus(cfg.trainer)  # as train.main does before train.train
    return cfg


def test_default_run_prints_config_and_trains_nothing(tmp_path: Path) -> None:
    proc = run_train(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "trainer:" in proc.stdout and "_target_: pytorch_lightning.Trainer" in proc.stdout
    assert "nothing was trained" in proc.stdout
    assert not any(line.startswith("checkpoint:") for line in proc.stdout.splitlines())
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="needs a machine with fewer than 2 GPUs")
def test_gpus_without_enough_cuda_is_one_clear_line(tmp_path: Path) -> None:
    proc = run_train("trainer.gpus=2", cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"error: trainer.gpus=2 but CUDA sees {torch.cuda.device_count()} GPU(s); use "
        "trainer.gpus=null to run on the CPU, or trainer=ddp_cpu to try DDP on CPU processes"
    ]


def test_unknown_model_name_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_train("model=seq2seq", cwd=tmp_path)
    assert proc.returncode != 0
    assert "error: model='seq2seq': configs/model/ does not exist yet" in proc.stderr


def test_gpus_shortcut_translation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    cfg = OmegaConf.create({"gpus": 4, "accelerator": "auto", "devices": 1, "strategy": "auto"})
    train.resolve_gpus(cfg)
    assert OmegaConf.to_container(cfg) == {"accelerator": "gpu", "devices": 4, "strategy": "ddp"}
    cfg = OmegaConf.create({"gpus": 1, "strategy": "auto"})
    train.resolve_gpus(cfg)
    assert cfg.devices == 1 and cfg.strategy == "auto"
    with pytest.raises(train.ConfigError, match=r"trainer\.gpus=0: expected an int >= 1"):
        train.resolve_gpus(OmegaConf.create({"gpus": 0}))


@pytest.mark.parametrize("choice", ["default", "seq2seq", "one_cycle_lesson", "none"])
def test_callback_configs_instantiate(tmp_path: Path, choice: str) -> None:
    cfg = compose_train(tmp_path, f"callbacks={choice}")
    callbacks = train.instantiate_each(cfg.callbacks)
    types = {type(c).__name__ for c in callbacks}
    expected = {
        "default": {"ModelCheckpoint", "RichProgressBar"},
        "seq2seq": {"ModelCheckpoint", "RichProgressBar", "OneCycleScheduler"}
        | {"TeacherForcingScheduler"},
        "one_cycle_lesson": {"OneCycleScheduler"},
        "none": set(),
    }[choice]
    assert types == expected
    lesson = [c for c in callbacks if isinstance(c, OneCycleScheduler)]
    if choice == "one_cycle_lesson":
        assert lesson[0].three_phase and lesson[0].anneal_strategy == "linear"


def test_train_fits_with_callbacks_from_config(tmp_path: Path) -> None:
    cfg = compose_train(
        tmp_path,
        TOY_MODEL,
        "callbacks=seq2seq",
        "callbacks.teacher_forcing.epochs=2",
        "callbacks.one_cycle.max_lr=[0.02,0.01]",
        "trainer=cpu",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
    )
    metrics = train.train(cfg)
    assert metrics["train/pr_force"] == 0.0  # 45 steps, decay over 30
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["train/lr_pg0"]]
    assert len(rows) == 45
    assert float(rows[0]["train/lr_pg0"]) == pytest.approx(0.02 / 25)
    assert float(rows[0]["train/pr_force"]) == 1.0
    assert float(rows[15]["train/pr_force"]) == pytest.approx(0.5)


@pytest.mark.ddp
def test_train_py_cli_fits_on_two_cpu_processes(tmp_path: Path) -> None:
    proc = run_train(
        TOY_MODEL,
        "callbacks=seq2seq",
        "trainer=ddp_cpu",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "~callbacks.rich_progress_bar",
        "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("checkpoint: ") and Path(last.split(" ", 1)[1]).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"], "one output directory for both ranks"
    with open(tmp_path / "run" / "csv" / "version_0" / "metrics.csv") as f:
        steps = {r["step"] for r in csv.DictReader(f) if r["train/lr_pg0"]}
    assert len(steps) == 2 * 8  # 60 samples -> 30 per rank -> 8 batches of 4 per epoch


def test_callbacks_are_importable_by_name() -> None:
    assert OneCycleScheduler.__module__ == "callbacks.one_cycle"
    assert TeacherForcingScheduler.__module__ == "callbacks.teacher_forcing"
