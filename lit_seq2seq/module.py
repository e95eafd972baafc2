"""``Seq2SeqModule``: training, validation metrics and checkpoints around the plain ``Seq2Seq`` net.

Training runs the decoder for every target position with teacher forcing (``pr_force``, set by
``callbacks.TeacherForcingScheduler``) and cross-entropy that ignores padding. Validation decodes
greedily without teacher forcing and reports:

- ``val/loss``, ``val/ppl``, ``val/acc``: cross-entropy, its exponent and token accuracy over the
  real target tokens (padding excluded);
- ``val/lesson_loss``: the lesson's ``seq2seq_loss`` on the same decodes, to compare with its
  table: padding counted (no ``ignore_index``) and the positions after the decoder would have
  stopped (every sentence past eos) scored as zero logits;
- ``val/bleu``: corpus BLEU (sacreBLEU via torchmetrics, 13a tokenisation, 0-100) of the greedy
  translations against the tokenised, lowercased references.

The vocabularies and tokenizer settings are stored in the checkpoint, so ``from_checkpoint`` needs
nothing else to translate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric, SumMetric
from torchmetrics.text import SacreBLEUScore

from lit_seq2seq.checkpoint import CheckpointError, read_checkpoint
from lit_seq2seq.dataset import Batch
from lit_seq2seq.model import Seq2Seq, Seq2SeqConfig
from lit_seq2seq.reporting import log_attention, log_samples
from lit_seq2seq.search import greedy
from lit_seq2seq.tokenizer import detokenize
from lit_seq2seq.vocab import Vocab

OPTIMIZERS = ("adam", "sgd")
__all__ = ["CheckpointError", "Seq2SeqModule"]


class Seq2SeqModule(pl.LightningModule):
    """Lightning wrapper of ``Seq2Seq``; the net is built once the data's vocabularies are known.

    Args:
        net: network hyperparameters (``Seq2SeqConfig`` or its fields as a dict).
        optimizer: ``adam`` or ``sgd``.
        lr: learning rate (``callbacks.OneCycleScheduler`` overrides it per step when used).
        betas: Adam betas; the lesson uses (0.8, 0.99).
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        n_samples: validation translations shown in the samples table.
        n_heatmaps: validation sentences drawn as attention heatmaps each validation.
        translation: vocabularies and tokenizer settings; given when restoring a checkpoint,
            otherwise taken from the datamodule at fit time.
    """

    def __init__(
        self,
        net: Seq2SeqConfig | dict[str, Any],
        optimizer: str = "adam",
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.8, 0.99),
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        n_samples: int = 8,
        n_heatmaps: int = 4,
        translation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r} unknown; valid: {list(OPTIMIZERS)}")
        config = net if isinstance(net, Seq2SeqConfig) else Seq2SeqConfig(**net)
        self.save_hyperparameters(
            {
                "net": config.to_dict(),
                "optimizer": optimizer,
                "lr": lr,
                "betas": list(betas),
                "momentum": momentum,
                "weight_decay": weight_decay,
                "n_samples": n_samples,
                "n_heatmaps": n_heatmaps,
            }
        )
        self.config = config
        self.pr_force = 0.0  # probability of feeding the reference token; the callback sets it
        self.net: Seq2Seq | None = None
        self.translation: dict[str, Any] | None = None
        self.metrics = torch.nn.ModuleDict(
            {
                f"{stage}_{name}": metric()
                for stage in ("val", "test")
                for name, metric in (
                    ("nll", SumMetric),
                    ("tokens", SumMetric),
                    ("correct", SumMetric),
                )
            }
        )
        self.lesson_loss = torch.nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})
        self.bleu = torch.nn.ModuleDict({s: SacreBLEUScore() for s in ("val", "test")})
        self._samples: list[tuple[str, str, str]] = []
        self._heatmaps: list[tuple[list[str], list[str], torch.Tensor]] = []
        if translation is not None:
            self._build(translation)

    # -- construction -------------------------------------------------------------------------
    def _build(self, translation: dict[str, Any]) -> None:
        self.translation = translation
        self.src_vocab = Vocab(translation["src_vocab"])
        self.tgt_vocab = Vocab(translation["tgt_vocab"])
        self.net = Seq2Seq(self.config, len(self.src_vocab), len(self.tgt_vocab))

    def configure_model(self) -> None:
        if self.net is not None:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "translation_info"):
            raise RuntimeError("Seq2SeqModule needs a TranslationDataModule to build its network")
        self._build(datamodule.translation_info())
        assert self.net is not None
        self.net.load_pretrained(datamodule.pretrained.get("src"), datamodule.pretrained.get("tgt"))

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str = "cpu") -> Seq2SeqModule:
        """A module ready to translate, from a checkpoint alone (loaded with ``weights_only``)."""
        checkpoint = read_checkpoint(
            path,
            "translation",
            "translation checkpoint (no vocabularies in it)",
            "python train.py model=seq2seq",
            map_location,
        )
        hparams = dict(checkpoint["hyper_parameters"])
        hparams["betas"] = tuple(hparams["betas"])
        module = cls(**hparams, translation=checkpoint["translation"])
        module.load_state_dict(checkpoint["state_dict"])
        return module.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["translation"] = self.translation

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("translation")
        if saved is None:
            raise CheckpointError("not a translation checkpoint (no vocabularies in it)")
        if self.translation is not None and (
            saved["src_vocab"] != self.translation["src_vocab"]
            or saved["tgt_vocab"] != self.translation["tgt_vocab"]
        ):
            raise CheckpointError(
                "the checkpoint's vocabularies differ from the data's; resume with the same data "
                "settings the checkpoint was trained with"
            )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        h = self.hparams
        if h.optimizer == "sgd":
            return torch.optim.SGD(
                self.parameters(), lr=h.lr, momentum=h.momentum, weight_decay=h.weight_decay
            )
        return torch.optim.Adam(
            self.parameters(), lr=h.lr, betas=tuple(h.betas), weight_decay=h.weight_decay
        )

    # -- steps ----------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        assert self.net is not None
        logits, _ = self.net(batch.src, batch.src_lengths, batch.tgt, pr_force=self.pr_force)
        pad = self.tgt_vocab.pad_idx
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt.flatten(), ignore_index=pad)
        real = batch.tgt != pad
        acc = ((logits.argmax(-1) == batch.tgt) & real).sum() / real.sum()
        size = batch.src.size(0)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        self.log("train/ppl", loss.detach().exp(), on_step=True, on_epoch=False, batch_size=size)
        self.log("train/acc", acc, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: Batch, batch_idx: int, stage: str) -> None:
        assert self.net is not None
        pad = self.tgt_vocab.pad_idx
        tgt = batch.tgt
        out = greedy(self.net, batch.src, batch.src_lengths, max_len=tgt.size(1), stop_early=False)
        real = tgt != pad
        nll = F.cross_entropy(
            out.logits.flatten(0, 1), tgt.flatten(), ignore_index=pad, reduction="sum"
        )
        self.metrics[f"{stage}_nll"].update(nll)
        self.metrics[f"{stage}_tokens"].update(real.sum())
        self.metrics[f"{stage}_correct"].update(((out.tokens == tgt) & real).sum())
        self.lesson_loss[stage].update(
            self.lesson_seq2seq_loss(out.logits, tgt, out.all_done_step), tgt.size(0)
        )
        hypotheses = [detokenize(self.tgt_vocab.decode(row)) for row in out.tokens.tolist()]
        references = [[detokenize(self.tgt_vocab.decode(row))] for row in tgt.tolist()]
        self.bleu[stage].update(hypotheses, references)
        if stage == "val" and batch_idx == 0 and self.trainer.is_global_zero:
            self._collect_examples(batch, hypotheses, references, out.attention)

    @staticmethod
    def lesson_seq2seq_loss(
        logits: torch.Tensor, tgt: torch.Tensor, all_done_step: int | None
    ) -> torch.Tensor:
        """The lesson's ``seq2seq_loss`` of a greedy decode that would stop after ``all_done_step``.

        Positions after the stop get zero logits (the lesson pads the shorter output with zeros) and
        padding counts as a target, as in the lesson (its ``ignore_index`` is commented out).

        Args:
            logits: (batch, tgt_len, vocab) from decoding ``tgt_len`` steps without early stop.
            tgt: (batch, tgt_len) targets.
            all_done_step: last step the lesson's decoder would have run, or None.
        """
        if all_done_step is not None and all_done_step + 1 < logits.size(1):
            logits = logits.clone()
            logits[:, all_done_step + 1 :] = 0.0
        return F.cross_entropy(logits.flatten(0, 1), tgt.flatten())

    def _collect_examples(
        self,
        batch: Batch,
        hypotheses: list[str],
        references: list[list[str]],
        attention: torch.Tensor | None,
    ) -> None:
        sources = [self.src_vocab.decode(row) for row in batch.src.tolist()]
        n = self.hparams.n_samples
        self._samples = [
            (detokenize(s), r[0], h)
            for s, r, h in zip(sources[:n], references[:n], hypotheses[:n], strict=True)
        ]
        self._heatmaps = []
        if attention is None:
            return
        for i in range(min(self.hparams.n_heatmaps, len(sources))):
            words = [*(hypotheses[i].split(" ") if hypotheses[i] else []), "_eos_"]
            words = words[: attention.size(1)]  # no eos when decoding ran out of steps
            src_len = int(batch.src_lengths[i])
            weights = attention[i, : len(words), :src_len].float().cpu()
            self._heatmaps.append(([*sources[i], "_eos_"], words, weights))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            step = self.global_step
            log_samples(self.trainer, "val/samples", self._samples, step)
            log_attention(self.trainer, "val/attention", self._heatmaps, step)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        # torchmetrics has already summed over ranks; sync_dist only silences Lightning's warning.
        nll = self.metrics[f"{stage}_nll"].compute()
        tokens = self.metrics[f"{stage}_tokens"].compute().clamp(min=1)
        loss = nll / tokens
        values = {
            "loss": loss,
            "ppl": loss.exp(),
            "acc": self.metrics[f"{stage}_correct"].compute() / tokens,
            "lesson_loss": self.lesson_loss[stage].compute(),
            "bleu": 100 * self.bleu[stage].compute(),
        }
        for name, value in values.items():
            shown = stage == "val" and name in ("loss", "bleu")
            self.log(f"{stage}/{name}", value, prog_bar=shown, sync_dist=True)
        for metric in (
            self.metrics[f"{stage}_nll"],
            self.metrics[f"{stage}_tokens"],
            self.metrics[f"{stage}_correct"],
            self.lesson_loss[stage],
            self.bleu[stage],
        ):
            metric.reset()
