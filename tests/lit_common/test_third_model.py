"""Adding a model takes one package plus one YAML per config group, and no edit anywhere else:
``tests/lit_common/third_model.py`` (built from ``lit_common`` and ``callbacks`` alone) gets a
model, a data and a callbacks YAML beside a copy of ``configs/``, then trains through
``train.train``, keeps its best checkpoint, reports, and restores with ``load_from_checkpoint``
and ``from_checkpoint``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import train
from lit_common import run
from tests.lit_common import third_model
from tests.lit_common.third_model import ArgmaxClassifier
from tests.test_layering import project_imports

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

THIRD_MODEL_CONFIGS = {
    "model/argmax.yaml": """
defaults:
  - override /data@_global_.data: argmax
  - override /callbacks@_global_.callbacks: argmax
_target_: tests.lit_common.third_model.ArgmaxClassifier
_convert_: all
_recursive_: false
hidden: 32
activation: relu
optimizer:
  _target_: torch.optim.Adam
  _partial_: true
  lr: 1.0e-2
""",
    "data/argmax.yaml": """
_target_: tests.lit_common.third_model.ArgmaxData
cache_dir: ${paths.data_dir}/cache
n: 512
n_features: 8
n_classes: 3
seed: ${seed}
""",
    "callbacks/argmax.yaml": """
defaults:
  - default
  - best_checkpoint
  - _self_
best_checkpoint:
  monitor: val/acc
  mode: max
""",
}


@pytest.fixture
def config_dir(tmp_path: Path) -> str:
    """``configs/`` plus the third model's three YAML files, nothing else changed."""
    configs = tmp_path / "configs"
    shutil.copytree(train.CONFIG_DIR, configs)
    for name, text in THIRD_MODEL_CONFIGS.items():
        assert not (configs / name).exists()
        (configs / name).write_text(text.lstrip())
    return str(configs)


def test_the_third_model_uses_the_shared_parts_only() -> None:
    imported = {top for _, top in project_imports(Path(third_model.__file__))}
    assert imported == {"lit_common"}


def test_a_third_model_trains_reports_and_restores(tmp_path: Path, config_dir: str) -> None:
    out = tmp_path / "run"
    cfg = run.compose(config_dir, [
        "model=argmax", "logger=csv", "trainer=cpu", "trainer.max_epochs=4",
        "trainer.enable_progress_bar=false", "~callbacks.rich_progress_bar",
        f"paths.data_dir={tmp_path / 'data'}", "test=false",
    ], out)  # fmt: skip
    assert cfg.optimized_metric == "val/acc"
    metrics = train.train(cfg)
    assert run.optimized_value(metrics, cfg.optimized_metric) == metrics["val/acc_best"]
    assert metrics["val/acc_best"] > 0.8, metrics  # chance is 1/3
    log_dir = out / "csv" / "version_0"
    assert list((log_dir / "val_samples").glob("step*.tsv"))
    assert list((log_dir / "val_probabilities").glob("step*.png"))
    assert list((tmp_path / "data" / "cache").glob("argmax-*/x.npy"))

    (best,) = (out / "checkpoints").glob("best-*.ckpt")
    x = torch.randn(16, 8)
    loaded = ArgmaxClassifier.load_from_checkpoint(best, map_location="cpu").eval()
    restored = ArgmaxClassifier.from_checkpoint(best)
    assert loaded.info == restored.info == {"n_features": 8, "classes": ["c0", "c1", "c2"]}
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), restored(x))
        accuracy = (loaded(x).argmax(1) == x[:, :3].argmax(1)).float().mean()
    assert accuracy > 0.6


def test_a_third_model_setting_error_is_one_line(tmp_path: Path, config_dir: str) -> None:
    cfg = run.compose(config_dir, ["model=argmax", "model.activation=gelu", "logger=none",
                                   f"paths.data_dir={tmp_path / 'data'}"], tmp_path)  # fmt: skip
    expected = r"^error: activation='gelu' unknown; valid: \['relu'"
    with pytest.raises(SystemExit, match=expected), run.one_line_errors():
        train.train(cfg)
