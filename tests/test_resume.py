"""Exact resume through train.py: crash mid-epoch, resume from the step checkpoint or the
on-exception one, and end with the weights of the uninterrupted run (CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import train
from lit_common.checkpoint import CheckpointError, resolve_ckpt_path
from lit_seq2seq.model import REGULARISER_RATES
from tests.conftest import DEVISE_RUN, TINY_RUN, compose_train
from tests.helpers import run_train
from tests.toy import SimulatedCrash

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

# The validation figures (heatmaps, search grids) are drawn from the weights and never feed
# back into training: left out here, where only the weights are compared.
SEQ2SEQ = [o for o in TINY_RUN if not o.startswith("trainer.max_epochs")] + [
    "data.train.n_pairs=500",  # 14 batches per epoch
    "trainer.max_epochs=3",
    "model.n_heatmaps=0",
]
# Every AWD-LSTM regulariser and word dropout on (lit_seq2seq/regularisers.py): their masks come
# from the RNG the checkpoint restores, so a resumed run must still end bit-exactly. The encoder
# keeps no dropout between layers, so weight drop runs on a fused multi-layer GRU there and
# layer by layer in the decoder.
SEQ2SEQ_AWD = [
    *SEQ2SEQ,
    *(f"model.net.{side}_{name}=0.3" for side in ("enc", "dec") for name in REGULARISER_RATES),
    "model.net.enc_locked_hidden=0.0",
    "model.net.ar_alpha=2.0",
    "model.net.tar_beta=1.0",
]
DEVISE = [o for o in DEVISE_RUN if not o.startswith("trainer.max_epochs")] + [
    "data.batch_size=32",  # 14 batches per epoch
    "trainer.max_epochs=3",
    "model.n_grid_queries=0",
]


def final_state(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"]


def fit(run: Path, data: Path, overrides: list[str], *extra: str) -> dict[str, float]:
    cfg = compose_train(run, *overrides, f"paths.data_dir={data}",
                        "callbacks.model_checkpoint.every_n_train_steps=5", *extra)  # fmt: skip
    return train.train(cfg)


@pytest.mark.parametrize("model", ["seq2seq", "seq2seq_awd", "devise"])
def test_kill_and_resume_ends_with_the_uninterrupted_weights(
    tmp_path: Path, data_dir: Path, model: str
) -> None:
    overrides = {"seq2seq": SEQ2SEQ, "seq2seq_awd": SEQ2SEQ_AWD, "devise": DEVISE}[model]
    data = data_dir
    fit(tmp_path / "whole", data, overrides)
    crash = "+callbacks.crash={_target_:tests.toy.CrashAt,step:23}"
    with pytest.raises(SimulatedCrash, match="crash at step 23"):
        fit(tmp_path / "killed", data, overrides, crash)
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 20
    assert torch.load(checkpoints / "on_exception.ckpt", weights_only=True)["global_step"] == 23
    want = final_state(tmp_path / "whole")
    for name in ("last.ckpt", "on_exception.ckpt"):
        run = tmp_path / f"resumed_{name}"
        fit(run, data, overrides, f"ckpt_path={checkpoints / name}")
        got = final_state(run)
        assert got.keys() == want.keys()
        different = [k for k in want if not torch.equal(got[k], want[k])]
        assert not different, f"resumed from {name}: {different[:5]} differ"
        steps = [torch.load(r / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
                 for r in (run, tmp_path / "whole")]  # fmt: skip
        assert steps[0] == steps[1] > 23


def test_ckpt_path_last_finds_the_newest_resumable_checkpoint(tmp_path: Path) -> None:
    runs = tmp_path / "logs" / "train" / "runs"
    old = runs / "a" / "checkpoints" / "last.ckpt"
    new = runs / "b" / "checkpoints" / "on_exception.ckpt"
    for path in (old, new, runs / "b" / "checkpoints" / "epoch001-step9.ckpt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": {}}, path)

    os.utime(old, (1, 1))
    current = runs / "c"
    assert resolve_ckpt_path("last", tmp_path / "logs" / "train", current) == str(new)
    with pytest.raises(CheckpointError, match=r"no last\.ckpt or on_exception\.ckpt"):
        resolve_ckpt_path("last", tmp_path / "nothing", current)
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_ckpt_path(str(tmp_path / "x.ckpt"), tmp_path, current)
    assert resolve_ckpt_path(None, tmp_path, current) is None


def test_ckpt_path_last_passes_over_checkpoints_of_another_model(tmp_path: Path) -> None:
    """A DeViSE run after a translation run: `last` is the newest DeViSE checkpoint, not the
    newest of any model (each run's .hydra/config.yaml names its model)."""
    runs = tmp_path / "logs" / "train" / "runs"
    targets = {"a": "lit_devise.module.DeviseModule", "b": "lit_seq2seq.module.Seq2SeqModule"}
    for name, target in targets.items():
        ckpt = runs / name / "checkpoints" / "last.ckpt"
        ckpt.parent.mkdir(parents=True)
        torch.save({"state_dict": {}}, ckpt)
        (runs / name / ".hydra").mkdir()
        (runs / name / ".hydra" / "config.yaml").write_text(f"model:\n  _target_: {target}\n")
    os.utime(runs / "a" / "checkpoints" / "last.ckpt", (1, 1))  # the translation run is newer
    root, current = tmp_path / "logs" / "train", runs / "c"
    devise = resolve_ckpt_path("last", root, current, targets["a"])
    assert devise == str(runs / "a" / "checkpoints" / "last.ckpt")
    assert resolve_ckpt_path("last", root, current, targets["b"]).startswith(str(runs / "b"))
    with pytest.raises(
        CheckpointError, match=r"of third\.Model .*\(2 of other models passed over\)"
    ):
        resolve_ckpt_path("last", root, current, "third.Model")


def test_sigterm_saves_a_checkpoint_and_ckpt_path_last_resumes_it_in_the_same_wandb_run(
    tmp_path: Path, data_dir: Path
) -> None:
    runs = tmp_path / "logs" / "train" / "runs"
    common = [o for o in DEVISE if not o.startswith("logger=")] + [
        "logger=wandb", f"paths.log_dir={tmp_path / 'logs'}", f"paths.data_dir={data_dir}",
    ]  # fmt: skip
    sigterm = "+callbacks.sigterm={_target_:tests.toy.SigtermAt,step:17}"
    first = run_train(*common, sigterm, f"hydra.run.dir={runs / 'a'}", cwd=tmp_path)
    saved = runs / "a" / "checkpoints" / "on_exception.ckpt"
    assert saved.is_file(), first.stderr[-2000:]
    assert torch.load(saved, weights_only=True)["global_step"] == 18  # the batch in flight ends
    second = run_train(*common, "ckpt_path=last", f"hydra.run.dir={runs / 'b'}", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resuming from {saved}" in second.stdout + second.stderr
    last = torch.load(runs / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 42  # 3 epochs x 14 batches: nothing lost, nothing repeated
    # The same W&B run continues (offline here: run folders end with the run id).
    ids = [{p.name.rsplit("-", 1)[1] for p in (runs / r / "wandb").glob("offline-run-*")}
           for r in ("a", "b")]  # fmt: skip
    assert len(ids[0]) == 1 and ids[0] == ids[1]


def test_a_checkpoint_of_another_process_count_is_refused() -> None:
    # Both datamodules record the run's process count in their checkpoint entry; the unit of
    # the check (the real 2 nodes <-> 1 process resumes are in tests/test_cluster.py).
    from lit_common.resumable import ResumeError, SameWorldOnResume, check_same_world
    from lit_devise.datamodule import DeviseDataModule
    from lit_seq2seq.datamodule import TranslationDataModule

    assert issubclass(TranslationDataModule, SameWorldOnResume)
    assert issubclass(DeviseDataModule, SameWorldOnResume)
    check_same_world(None, 4)  # a checkpoint from before the check
    check_same_world(2, 2)
    with pytest.raises(ResumeError, match=r"written by a run of 2 processes and this run has 1 "):
        check_same_world(2, 1)

    class Trainer:
        world_size = 8

    module = SameWorldOnResume()
    module.trainer = Trainer()
    assert module.state_dict() == {"world_size": 8}
    with pytest.raises(ResumeError, match="of 1 processes and this run has 8"):
        module.load_state_dict({"world_size": 1})
    from pytorch_lightning.trainer.states import TrainerFn, TrainerState

    Trainer.state = TrainerState(fn=TrainerFn.TESTING)  # type: ignore[attr-defined]
    module.load_state_dict({"world_size": 1})  # testing a checkpoint: any process count
    Trainer.state = TrainerState(fn=TrainerFn.FITTING)  # type: ignore[attr-defined]
    with pytest.raises(ResumeError):
        module.load_state_dict({"world_size": 1})
