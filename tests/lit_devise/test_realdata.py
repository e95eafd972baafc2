"""DeViSE on real photos (../shared/data): Imagenette, CIFAR-10 ResNet-20 features, GloVe."""

from __future__ import annotations

from pathlib import Path

import pytest

import train
from lit_devise import search as search_cli
from lit_devise.index import build_index
from tests.conftest import SHARED_DATA, compose_train

pytestmark = [pytest.mark.realdata, pytest.mark.slow, pytest.mark.train]


def test_devise_on_imagenette_with_cifar_resnet20(tmp_path: Path) -> None:
    """Two Imagenette classes held out; frozen CIFAR-10 ResNet-20 features; GloVe targets."""
    if not (SHARED_DATA / "imagenette-val").is_dir() or not (SHARED_DATA / "weights").is_dir():
        pytest.skip("../shared/data/imagenette-val or weights absent")
    cfg = compose_train(
        tmp_path,
        "experiment=devise_imagenette_cifar",
        f"paths.shared_data_dir={SHARED_DATA}",
        f"paths.data_dir={tmp_path / 'data'}",
        "trainer.max_epochs=8",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
        "logger=csv",
    )
    metrics = train.train(cfg)
    assert (
        metrics["val/hit_at_1"] > 0.45 and metrics["val/hit_at_5"] > 0.85
    )  # 8 classes: chance 0.125
    assert "zeroshot/hit_at_1" in metrics and "zeroshot/gen_hit_at_5" in metrics
    info = build_index(tmp_path / "checkpoints" / "last.ckpt", SHARED_DATA / "imagenette-val",
                       tmp_path / "index")  # fmt: skip
    assert info["images"] == 3925 and info["labels"] > 40_000  # classes + WordNet nouns
    results = search_cli.search(tmp_path / "index", text="ball", k=20)
    golf = sum("/n03445777/" in path for _, _, path in results)  # golf ball
    assert golf >= 15, results
