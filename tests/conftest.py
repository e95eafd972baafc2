"""Shared pytest setup: offline W&B, quiet Lightning, deterministic seeds, repo paths."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from filelock import FileLock
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")

# Property tests without Hypothesis's 200 ms deadline per example: speed is measured in bench/,
# and a DDP run on the other pytest-xdist worker can slow any example past it.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

# Under pytest-xdist (`make test` runs 2 workers on 2 cores), each worker and the processes its
# tests start use one thread: two workers with a thread per core each would fight for the cores.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER is not None and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
# Session fixtures that fit the translator or DeViSE: a test that uses one fits a model too, so
# it carries the `train` marker (`make test-unit` leaves those out) wherever it is written.
TRAINED_FIXTURES = ("tiny_run", "devise_run")


# Under pytest-xdist these files go out first (their tests start processes or fit models, 5 to 40
# seconds each), so the run ends on short tests instead of one worker alone on a long one. Each
# file's tests stay together and in order (module fixtures are built once).
LONG_FILES = (
    "tests/test_train.py",
    "tests/test_resume.py",
    "tests/callbacks/test_outside_project.py",
    "tests/lit_devise/test_cli.py",
    "tests/test_demo.py",  # after both trained fixtures are ready: its server needs both
    "tests/lit_seq2seq/test_realdata.py",
    "tests/lit_seq2seq/test_translate_hostile.py",
    "tests/lit_seq2seq/test_translate.py",
    "tests/test_bad_inputs.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if set(getattr(item, "fixturenames", ())) & set(TRAINED_FIXTURES):
            item.add_marker(pytest.mark.train)
    if XDIST_WORKER is not None and config.getvalue("loadgroup"):
        _name_groups(items)
    if XDIST_WORKER is not None:  # every worker sorts its collection the same way
        rank = {name: i for i, name in enumerate(LONG_FILES)}

        def file_rank(item: pytest.Item) -> int:
            path = os.path.relpath(str(item.fspath), REPO_ROOT).replace(os.sep, "/")
            return rank.get(path, len(LONG_FILES))

        items.sort(key=file_rank)  # stable: the other files keep their order


def _name_groups(items: list[pytest.Item]) -> None:
    """Give each ``xdist_group`` test its group's suffix (``...@demo``), which is how
    ``--dist loadgroup`` sends a group to one worker. pytest-xdist 3.8 writes it to
    ``item._nodeid``, which pytest 9 no longer reads (the id lives in ``item._id``), so without
    this every group was spread over the workers and its module fixtures (a trained index, the
    demo server) were built on each one."""
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # pytest < 9: pytest-xdist's own renaming works
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})  # fmt: skip
        if names and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _quiet_and_seeded() -> None:
    torch.manual_seed(0)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__`.*")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``paths.data_dir`` for the session's runs (per pytest-xdist worker): the caches in it
    are keyed by their content (``lit_common/cache.py``), so runs with the same data settings
    tokenise, train word vectors and precompute activations once instead of once per test.
    Tests that damage, count or hand-make files in their data folder keep one of their own."""
    return tmp_path_factory.mktemp("data")


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


def session_run(factory: pytest.TempPathFactory, name: str, overrides: tuple[str, ...]) -> Any:
    """Train ``overrides`` once per test session, also across pytest-xdist workers: the first
    worker that needs the run trains it under a file lock in the folder the workers share; the
    others wait, then read its metrics. Returns ``(cfg, metrics, folder)``."""
    import train

    if XDIST_WORKER is None:
        out, lock = factory.mktemp(name), contextlib.nullcontext()
    else:
        out = factory.getbasetemp().parent / name  # the session's folder, above each worker's
        lock = FileLock(f"{out}.lock")
    with lock:
        cfg = compose_train(out, *overrides, f"paths.data_dir={out / 'data'}")
        done, failed = out / "session_metrics.json", out.with_name(f"{name}.failed")
        if failed.is_file():
            pytest.fail(f"the {name} fixture failed on another worker: {failed.read_text()}")
        if done.is_file():
            return cfg, json.loads(done.read_text()), out
        if XDIST_WORKER is not None and out.exists():
            shutil.rmtree(out)  # a worker killed while training left it: start clean
        try:
            metrics = train.train(cfg)
        except BaseException as err:
            failed.write_text(f"{type(err).__name__}: {err}")
            raise
        partial = done.with_suffix(".partial")
        partial.write_text(json.dumps(metrics))
        os.replace(partial, done)  # whole or absent for the other workers
    return cfg, metrics, out


@pytest.fixture(scope="session", autouse=True)
def _train_session_runs_at_once(request: pytest.FixtureRequest) -> None:
    """Under pytest-xdist, worker gw0 trains ``tiny_run`` and gw1 ``devise_run`` first, at the
    same time, when the session has tests that use them; otherwise both workers soon need the
    same run and one of them waits idle for it."""
    if XDIST_WORKER not in ("gw0", "gw1"):
        return
    used = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    first = dict(zip(("gw0", "gw1"), TRAINED_FIXTURES, strict=True))[XDIST_WORKER]
    if first in used:
        request.getfixturevalue(first)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train the tiny run once per session; returns its config, metrics and checkpoint."""
    cfg, metrics, out = session_run(tmp_path_factory, "tiny_run", TINY_RUN)
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
    cfg, metrics, out = session_run(tmp_path_factory, "devise_run", DEVISE_RUN)
    return {
        "cfg": cfg,
        "metrics": metrics,
        "dir": out,
        "ckpt": out / "checkpoints" / "last.ckpt",
        "shapes": out / "data" / "shapes",
    }
