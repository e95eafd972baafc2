"""Shared pytest setup: offline W&B, quiet Lightning, deterministic seeds, repo paths."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")
# Session fixtures that fit the translator or DeViSE: a test that uses one fits a model too, so
# it carries the `train` marker (`make test-unit` leaves those out) wherever it is written.
TRAINED_FIXTURES = ("tiny_run", "devise_run")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if set(getattr(item, "fixturenames", ())) & set(TRAINED_FIXTURES):
            item.add_marker(pytest.mark.train)


@pytest.fixture(autouse=True)
def _quiet_and_seeded() -> None:
    torch.manual_seed(0)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__`.*")


@pytest.fixture
def trainer_kwargs(tmp_path: Path) -> dict[str, Any]:
    """Small, fast, CPU-only Trainer settings writing under ``tmp_path``."""
    return {
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(tmp_path),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
    }


def compose_train(output_dir: Path, *overrides: str) -> Any:
    """The composed ``train.yaml`` as ``train.main`` sees it, writing under ``output_dir``."""
    import train

    return train.compose(list(overrides), output_dir)


# A small but real run: synthetic corpus, fastText vectors trained on it, the attention model.
TINY_RUN = (
    "data.train.n_pairs=2000",
    "data.batch_size=32",
    "data.src_vectors.epochs=2",
    "data.tgt_vectors.epochs=2",
    "model.net.enc_emb_dim=64",
    "model.net.enc_hidden=64",
    "model.net.dec_emb_dim=64",
    "model.net.dec_hidden=64",
    "model.net.attn_size=64",
    "model.optimizer.lr=1e-2",
    "trainer=cpu",
    "trainer.max_epochs=6",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.teacher_forcing.epochs=4",
    "~callbacks.rich_progress_bar",
)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train the tiny run once per session; returns its config, metrics and checkpoint."""
    import train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_train(out, *TINY_RUN, f"paths.data_dir={out / 'data'}")
    metrics = train.train(cfg)
    return {"cfg": cfg, "metrics": metrics, "dir": out, "ckpt": out / "checkpoints" / "last.ckpt"}


# A small DeViSE run: the embedded shapes dataset, random frozen ResNet-18, precomputed activations.
DEVISE_RUN = (
    "model=devise",
    "data.synthetic.n_per_class=30",
    "data.image_size=48",
    "model.net.hidden=256",
    "model.optimizer.lr=1e-2",
    "trainer=cpu",
    "trainer.max_epochs=10",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "~callbacks.rich_progress_bar",
)


@pytest.fixture(scope="session")
def devise_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train the small DeViSE run once per session; returns its config, metrics and checkpoint."""
    import train

    out = tmp_path_factory.mktemp("devise_run")
    cfg = compose_train(out, *DEVISE_RUN, f"paths.data_dir={out / 'data'}")
    metrics = train.train(cfg)
    return {
        "cfg": cfg,
        "metrics": metrics,
        "dir": out,
        "ckpt": out / "checkpoints" / "last.ckpt",
        "shapes": out / "data" / "shapes",
    }
