"""Seq2SeqModule: the lesson loss, a tiny end-to-end fit, checkpoints that carry the vocabulary
and the detokenizer, argument checks, the plateau scheduler."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn import functional as F

from lit_seq2seq.module import CheckpointError, Seq2SeqModule

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train


def test_lesson_loss_counts_padding_and_zeroes_logits_after_the_stop() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6)
    tgt = torch.tensor([[4, 2, 1, 1], [5, 4, 2, 1]])
    full = Seq2SeqModule.lesson_seq2seq_loss(logits, tgt, None)
    assert full == F.cross_entropy(logits.flatten(0, 1), tgt.flatten())  # pad counted
    stopped = Seq2SeqModule.lesson_seq2seq_loss(logits, tgt, 1)
    zeroed = logits.clone()
    zeroed[:, 2:] = 0.0
    assert stopped == F.cross_entropy(zeroed.flatten(0, 1), tgt.flatten())
    assert Seq2SeqModule.lesson_seq2seq_loss(logits, tgt, 3) == full


def test_tiny_fit_lowers_valid_loss_and_logs_everything(tiny_run: dict[str, Any]) -> None:
    with open(tiny_run["dir"] / "csv" / "version_0" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val = [r for r in rows if r["val/loss"]]
    assert len(val) == 6
    first, last = float(val[0]["val/loss"]), float(val[-1]["val/loss"])
    assert last < 0.8 * first, (first, last)
    assert float(val[-1]["val/bleu"]) > float(val[0]["val/bleu"]) + 3  # BLEU on a 0-100 scale
    assert float(val[-1]["val/lesson_loss"]) > 0 and float(val[-1]["val/ppl"]) > 1
    # val/loss is teacher forced: its exponent is the perplexity, and it sits well below the
    # lesson's greedy loss (which also counts padding and positions after a wrong early stop).
    last_loss = float(val[-1]["val/loss"])
    assert float(val[-1]["val/ppl"]) == pytest.approx(math.exp(last_loss), rel=1e-4)
    assert last_loss < float(val[-1]["val/lesson_loss"])
    # last.ckpt holds the latest weights (for resuming); best-*.ckpt the best val/bleu (for use).
    assert torch.load(tiny_run["ckpt"], weights_only=True)["epoch"] == 5
    (best,) = (tiny_run["dir"] / "checkpoints").glob("best-*.ckpt")
    best_epoch = max(range(len(val)), key=lambda i: float(val[i]["val/bleu"]))
    assert torch.load(best, weights_only=True)["epoch"] == int(val[best_epoch]["epoch"])
    train_rows = [r for r in rows if r["train/lr"]]
    assert train_rows and all(r["train/pr_force"] for r in train_rows)
    assert float(train_rows[0]["train/pr_force"]) == 1.0
    assert list((tiny_run["dir"] / "csv" / "version_0" / "attention").glob("step*.png"))
    samples = sorted((tiny_run["dir"] / "csv" / "version_0" / "samples").glob("step*.tsv"))
    lines = samples[-1].read_text().splitlines()
    assert lines[0] == "source\treference\thypothesis"
    reference = lines[1].split("\t")[1]
    assert reference.endswith("?") and not reference.endswith(" ?"), "raw reference text"


def test_bf16_mixed_fit_learns_under_autocast_and_translates_in_fp32(tmp_path: Path) -> None:
    """The tuned recipe's precision on a CPU with bf16 (lit_common/precision.py): training really
    runs under bf16 autocast (the output layer computes in bf16) and still learns, validation
    decodes in fp32 as the translate CLI does, and the checkpoint keeps fp32 weights."""
    import pytorch_lightning as pl

    import train
    from lit_seq2seq.translator import Translator
    from tests.conftest import TINY_RUN, compose_train

    class OutputDtypes(pl.Callback):
        """The dtypes of the decoder's output layer, per stage."""

        def __init__(self) -> None:
            self.seen: dict[str, set[torch.dtype]] = {}

        def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            def record(layer: Any, inputs: Any, output: torch.Tensor) -> None:
                stage = "train" if module.training else "eval"
                self.seen.setdefault(stage, set()).add(output.dtype)

            module.net.decoder.out.register_forward_hook(record)

    cfg = compose_train(
        tmp_path,
        *TINY_RUN,
        "data.train.n_pairs=800",
        "trainer.max_epochs=4",
        "trainer.precision=bf16-mixed",
        f"paths.data_dir={tmp_path / 'data'}",
    )
    dtypes = OutputDtypes()
    datamodule, model, trainer = train.build(cfg, extra_callbacks=[dtypes])
    trainer.fit(model, datamodule=datamodule)
    assert dtypes.seen == {"train": {torch.bfloat16}, "eval": {torch.float32}}, dtypes.seen
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        val = [r for r in csv.DictReader(f) if r["val/loss"]]
    first, last = float(val[0]["val/loss"]), float(val[-1]["val/loss"])
    assert math.isfinite(last) and last < 0.9 * first, (first, last)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    weights = torch.load(ckpt, weights_only=True)["state_dict"]
    assert {w.dtype for w in weights.values() if w.is_floating_point()} == {torch.float32}
    module = Seq2SeqModule.from_checkpoint(ckpt)
    dtypes.seen.clear()
    dtypes.on_fit_start(trainer, module)
    (result,) = Translator(module, beam=1)(["où est le chat ?"])
    assert result.text.strip()
    assert dtypes.seen == {"eval": {torch.float32}}, "the CLIs translate in fp32"


def test_from_checkpoint_needs_nothing_but_the_file(tiny_run: dict[str, Any]) -> None:
    module = Seq2SeqModule.from_checkpoint(tiny_run["ckpt"])
    assert module.translation is not None and module.translation["src_lang"] == "fr"
    assert module.src_vocab.itos[:4] == ["_bos_", "_pad_", "_eos_", "_unk_"]
    raw = torch.load(tiny_run["ckpt"], weights_only=True)
    assert set(raw["translation"]) >= {
        "src_vocab", "tgt_vocab", "lowercase", "max_tgt_len", "detokenizer",
    }  # fmt: skip
    assert "?" in raw["translation"]["detokenizer"]["attach_left"]
    assert "translation" not in raw["hyper_parameters"], "no vocabulary in the logged hparams"


def test_load_from_checkpoint_needs_no_trainer_and_translates_alike(
    tiny_run: dict[str, Any],
) -> None:
    """Lightning's own `load_from_checkpoint` (no Trainer, no datamodule) gives the same
    network as the trained module's checkpoint read by `from_checkpoint`."""
    loaded = Seq2SeqModule.load_from_checkpoint(tiny_run["ckpt"]).eval()
    reference = Seq2SeqModule.from_checkpoint(tiny_run["ckpt"])
    assert loaded.translation == reference.translation and loaded.net is not None
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 2, 1, 1]])
    lengths = torch.tensor([5, 3])
    tgt = torch.tensor([[4, 5, 6, 2], [7, 8, 2, 1]])
    with torch.no_grad():
        logits = loaded.net(src, lengths, tgt, pr_force=1.0)[0]
        torch.testing.assert_close(logits, reference.net(src, lengths, tgt, 1.0)[0])
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_wrong_or_broken_checkpoints_are_clear_errors(
    tmp_path: Path, tiny_run: dict[str, Any]
) -> None:
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, other)
    with pytest.raises(CheckpointError, match="not a translation checkpoint"):
        Seq2SeqModule.from_checkpoint(other)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_run["ckpt"].read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Seq2SeqModule.from_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        Seq2SeqModule.from_checkpoint(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match=r"optimizer\._target_='torch\.optim\.Adamm' cannot be"):
        Seq2SeqModule({}, optimizer={"_target_": "torch.optim.Adamm", "lr": 1e-3})
    with pytest.raises(ValueError, match="optimizer: expected a config with a _target_"):
        Seq2SeqModule({}, optimizer="rmsprop")  # type: ignore[arg-type]


def test_bad_arguments_name_the_valid_values() -> None:
    with pytest.raises(ValueError, match=r"scheduler\._target_='cosine' cannot be imported"):
        Seq2SeqModule({}, scheduler={"_target_": "cosine"})
    with pytest.raises(ValueError, match=r"label_smoothing=1\.0 is out of range"):
        Seq2SeqModule({}, label_smoothing=1.0)
    with pytest.raises(ValueError, match="gradient_clip_norm=0"):
        Seq2SeqModule({}, gradient_clip_norm=0)


TINY_TRANSLATION = {"src_vocab": ["_bos_", "_pad_", "_eos_", "_unk_", "a"],
                    "tgt_vocab": ["_bos_", "_pad_", "_eos_", "_unk_", "b"]}  # fmt: skip
TINY_NET = {"enc_emb_dim": 8, "enc_hidden": 4, "dec_emb_dim": 6, "dec_hidden": 6, "attn_size": 5}


def test_any_torch_optimizer_by_config() -> None:
    """Optimizers are Hydra `_partial_` configs: any class by name, its arguments passed on, and
    the checkpointed hyperparameters stay plain values."""
    module = Seq2SeqModule(
        TINY_NET,
        optimizer={"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9, "nesterov": True},
        translation=TINY_TRANSLATION,
    )
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["nesterov"]
    assert module.hparams.optimizer["_partial_"] is True
    default = Seq2SeqModule(TINY_NET, translation=TINY_TRANSLATION).configure_optimizers()
    assert isinstance(default, torch.optim.Adam) and default.defaults["betas"] == (0.9, 0.999)


def test_plateau_scheduler_watches_validation_bleu() -> None:
    plateau_config = {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "mode": "max"}
    plateau_config |= {"factor": 0.5, "patience": 3}
    module = Seq2SeqModule(TINY_NET, scheduler=plateau_config, translation=TINY_TRANSLATION)
    config = module.configure_optimizers()
    scheduler = config["lr_scheduler"]
    assert scheduler["monitor"] == "val/bleu" and scheduler["interval"] == "epoch"
    plateau = scheduler["scheduler"]
    assert plateau.mode == "max" and plateau.patience == 3 and plateau.factor == 0.5


def test_resuming_on_other_data_lists_what_differs() -> None:
    """A checkpoint trained on other data is refused, naming each vocabulary that differs."""
    module = Seq2SeqModule({"enc_emb_dim": 8, "enc_hidden": 8, "dec_emb_dim": 8, "dec_hidden": 8,
                            "attn_size": 8})  # fmt: skip
    specials = ["_bos_", "_pad_", "_eos_", "_unk_"]
    mine = {"src_vocab": [*specials, "où", "est"], "tgt_vocab": [*specials, "where"],
            "lowercase": True}  # fmt: skip
    module.info = mine
    module.check_resume(dict(mine))  # the same data resumes
    other = {**mine, "src_vocab": [*specials, "où", "sont", "les"], "lowercase": False}
    with pytest.raises(CheckpointError) as err:
        module.check_resume(other)
    message = str(err.value)
    assert (
        "French vocabulary (checkpoint 7 entries, data 6; first difference at entry 5)" in message
    )
    assert "English" not in message and "lowercasing (checkpoint False, data True)" in message


def test_resuming_with_another_network_lists_the_settings() -> None:
    """model.net.enc_hidden=16 on a checkpoint trained with 8: refused before Lightning loads the
    weights (which would stop on their shapes with a traceback). Settings that keep the shapes
    (dropout) may change on resume."""
    net = {"enc_emb_dim": 8, "enc_hidden": 8, "dec_emb_dim": 8, "dec_hidden": 8, "attn_size": 8}
    specials = ["_bos_", "_pad_", "_eos_", "_unk_"]
    info = {"src_vocab": [*specials, "où"], "tgt_vocab": [*specials, "where"], "src_lang": "fr",
            "lowercase": True, "detokenizer": None}  # fmt: skip
    trained = Seq2SeqModule(net)
    trained.build_net(info)
    checkpoint = {"translation": info, "hyper_parameters": dict(trained.hparams),
                  "state_dict": trained.state_dict()}  # fmt: skip
    wider = Seq2SeqModule({**net, "enc_hidden": 16})
    wider.build_net(info)
    with pytest.raises(
        CheckpointError, match=r"model\.net\.enc_hidden \(checkpoint 8, config 16\)"
    ):
        wider.on_load_checkpoint(checkpoint)
    less_dropout = Seq2SeqModule({**net, "out_dropout": 0.1})
    less_dropout.build_net(info)
    less_dropout.on_load_checkpoint(checkpoint)  # the same shapes: resumes
