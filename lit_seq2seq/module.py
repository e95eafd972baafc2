"""``Seq2SeqModule``: training, validation metrics and checkpoints around the plain ``Seq2Seq`` net.

Training runs the decoder for every target position with teacher forcing (``pr_force``, set by
``callbacks.TeacherForcingScheduler``) and cross-entropy that ignores padding (optionally label
smoothed). Validation and test report:

- ``val/loss``, ``val/ppl``, ``val/acc``: teacher-forced cross-entropy per real target token, its
  exponent and token accuracy (padding excluded): the model's fit, comparable across toolkits;
- ``val/lesson_loss``: the lesson's ``seq2seq_loss`` on greedy decodes, to compare with its table:
  padding counted (no ``ignore_index``) and the positions after the decoder would have stopped
  (every sentence past eos) scored as zero logits;
- ``val/bleu``: corpus BLEU (0-100, ``bleu.py``) of the detokenised greedy translations, decoded
  without looking at the reference length, against the raw reference strings (all references of
  a French sentence that occurs several times).

The vocabularies, tokenizer settings and the detokenizer are stored in the checkpoint, so
``from_checkpoint`` and ``load_from_checkpoint`` need nothing else to translate (the
``lit_common.sizes`` protocol both models share).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric, SumMetric

from lit_common.checkpoint import CheckpointError
from lit_common.optim import build, partial_config
from lit_common.ranges import PROBABILITY, Int, Range, Real, check_ranges
from lit_common.schema import require, require_strings
from lit_common.sizes import BuiltFromData
from lit_seq2seq.bleu import CorpusBleu
from lit_seq2seq.dataset import Batch
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.model import Seq2Seq, Seq2SeqConfig
from lit_seq2seq.reporting import log_attention, log_samples
from lit_seq2seq.search import greedy
from lit_seq2seq.vocab import Vocab

DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "lr": 3e-3, "betas": [0.9, 0.999]}
__all__ = ["CheckpointError", "Seq2SeqModule"]


class Seq2SeqModule(BuiltFromData, pl.LightningModule):
    """Lightning wrapper of ``Seq2Seq``; the net is built once the data's vocabularies are known.

    Args:
        net: network hyperparameters (``Seq2SeqConfig`` or its fields as a dict).
        optimizer: any optimizer as a Hydra ``_partial_`` config (``_target_`` and arguments,
            e.g. ``torch.optim.Adam`` with ``lr`` and ``betas``), called with the parameters
            (``lit_common.optim``); ``callbacks.OneCycleScheduler`` sets the LR per step when used.
        label_smoothing: share of the target probability spread over the vocabulary in the
            training loss (Szegedy et al., arXiv:1512.00567, section 7); validation losses never
            smooth.
        scheduler: null (the LR comes from the optimizer or a callback such as
            ``OneCycleScheduler``) or any LR scheduler as a ``_partial_`` config called with the
            optimizer, stepped every epoch; e.g. ``ReduceLROnPlateau`` with ``mode: max``
            (Joey NMT's recipe: the LR halves when ``val/bleu`` stalls).
        scheduler_monitor: the metric a plateau-style scheduler watches.
        gradient_clip_norm: clip the gradients' global norm to this before each optimizer step
            (Joey NMT: 1.0); null does not clip. ``trainer.gradient_clip_val``, when set, wins.
        n_samples: validation translations shown in the samples table.
        n_heatmaps: validation sentences drawn as attention heatmaps each validation.
        translation: vocabularies and tokenizer settings; given when restoring a checkpoint,
            otherwise taken from the datamodule at fit time.
    """

    RANGES: ClassVar[dict[str, Range]] = {
        **{f"net.{key}": valid for key, valid in Seq2SeqConfig.RANGES.items()},
        "label_smoothing": PROBABILITY,
        "gradient_clip_norm": Real(0.0, low_open=True, null=True),
        "n_samples": Int(0, 10_000),
        "n_heatmaps": Int(0, 1_000),
    }

    def __init__(
        self,
        net: Seq2SeqConfig | dict[str, Any],
        optimizer: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        scheduler: dict[str, Any] | None = None,
        scheduler_monitor: str = "val/bleu",
        gradient_clip_norm: float | None = None,
        n_samples: int = 8,
        n_heatmaps: int = 4,
        translation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_ranges(locals(), self.RANGES)
        optimizer = partial_config(optimizer or DEFAULT_OPTIMIZER, "optimizer")
        scheduler = partial_config(scheduler, "scheduler")
        config = net if isinstance(net, Seq2SeqConfig) else Seq2SeqConfig(**net)
        self.save_hyperparameters(
            {
                "net": config.to_dict(),
                "optimizer": optimizer,
                "label_smoothing": label_smoothing,
                "scheduler": scheduler,
                "scheduler_monitor": scheduler_monitor,
                "gradient_clip_norm": gradient_clip_norm,
                "n_samples": n_samples,
                "n_heatmaps": n_heatmaps,
            }
        )
        self.config = config
        self.pr_force = 0.0  # probability of feeding the reference token; the callback sets it
        self.net: Seq2Seq | None = None
        self.info: dict[str, Any] | None = None
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
        self.bleu = torch.nn.ModuleDict({s: CorpusBleu() for s in ("val", "test")})
        self._samples: list[tuple[str, str, str]] = []
        self._heatmaps: list[tuple[list[str], list[str], torch.Tensor]] = []
        if translation is not None:
            self.build_net(translation)

    # -- construction (lit_common.sizes: built from the data's model_info, kept in checkpoints) --
    info_key = "translation"
    info_keys = ("src_vocab", "tgt_vocab", "detokenizer")
    info_what = "translation checkpoint (no vocabularies in it)"
    train_command = "python train.py model=seq2seq"

    @property
    def translation(self) -> dict[str, Any] | None:
        """Vocabularies, tokenizer settings and detokenizer: what translating needs besides
        weights (``TranslationDataModule.model_info``)."""
        return self.info

    @classmethod
    def check_info(cls, info: Any) -> None:
        """Vocabularies as lists of strings that start with the specials, without duplicates;
        the tokenizer's settings: what a damaged or hand-made checkpoint breaks."""
        super().check_info(info)
        require(info, {"src_lang": str, "lowercase": bool, "detokenizer": (dict, None)}, "info")
        for side in ("src_vocab", "tgt_vocab"):
            Vocab(require_strings(info[side], f"its {side}"))
        import spacy

        try:
            spacy.util.get_lang_class(info["src_lang"])
        except Exception:  # spaCy raises ImportError/KeyError variants for unknown codes
            raise CheckpointError(
                f"its src_lang {info['src_lang']!r} is not a spaCy language"
            ) from None

    def build_net(self, info: dict[str, Any]) -> None:
        self.info = info
        self.src_vocab = Vocab(info["src_vocab"])
        self.tgt_vocab = Vocab(info["tgt_vocab"])
        self.detokenizer = Detokenizer.from_dict(info.get("detokenizer"))
        self.net = Seq2Seq(self.config, len(self.src_vocab), len(self.tgt_vocab))

    def after_build(self, datamodule: Any) -> None:
        assert self.net is not None
        pretrained = getattr(datamodule, "pretrained", {})
        self.net.load_pretrained(pretrained.get("src"), pretrained.get("tgt"))

    def check_resume(self, saved: dict[str, Any]) -> None:
        """Refuse to continue a run on other data: each vocabulary that differs is listed (its
        size and first differing entry), since the embedding rows would mean other words."""
        if self.info is None:
            return
        differ = []
        for side, language in (("src_vocab", "French"), ("tgt_vocab", "English")):
            mine, theirs = list(self.info[side]), list(saved[side])
            if mine != theirs:
                pairs = enumerate(zip(mine, theirs, strict=False))  # lengths may differ
                at = next((i for i, (a, b) in pairs if a != b), None)
                at = min(len(mine), len(theirs)) if at is None else at
                differ.append(
                    f"the {language} vocabulary (checkpoint {len(theirs)} entries, data "
                    f"{len(mine)}; first difference at entry {at})"
                )
        if self.info.get("lowercase") != saved.get("lowercase"):
            theirs_lc, mine_lc = saved.get("lowercase"), self.info.get("lowercase")
            differ.append(f"lowercasing (checkpoint {theirs_lc}, data {mine_lc})")
        if differ:
            raise CheckpointError(
                "the checkpoint was trained on other data: "
                + "; ".join(differ)
                + ". Resume with the data settings it was trained with, or start a new run"
            )

    def configure_optimizers(self) -> Any:
        h = self.hparams
        optimizer = build(h.optimizer, self.parameters())
        if h.scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": build(h.scheduler, optimizer),
                "monitor": h.scheduler_monitor,
                "interval": "epoch",
            },
        }

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        if gradient_clip_val is None and self.hparams.gradient_clip_norm is not None:
            gradient_clip_val, gradient_clip_algorithm = self.hparams.gradient_clip_norm, "norm"
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # -- steps ----------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        assert self.net is not None
        c = self.config
        trace: list[tuple[torch.Tensor, torch.Tensor]] | None = (
            [] if c.ar_alpha > 0 or c.tar_beta > 0 else None
        )
        logits, _ = self.net(
            batch.src, batch.src_lengths, batch.tgt, pr_force=self.pr_force, trace=trace
        )
        pad = self.tgt_vocab.pad_idx
        flat_logits, flat_tgt = logits.flatten(0, 1), batch.tgt.flatten()
        nll = F.cross_entropy(flat_logits, flat_tgt, ignore_index=pad)
        loss = nll
        if self.hparams.label_smoothing > 0:
            loss = F.cross_entropy(
                flat_logits,
                flat_tgt,
                ignore_index=pad,
                label_smoothing=self.hparams.label_smoothing,
            )
        real = batch.tgt != pad
        size = batch.src.size(0)
        if trace is not None:  # AWD-LSTM's AR/TAR on the decoder's outputs
            penalty = self.net.activation_penalty(trace, real)
            loss = loss + penalty
            self.log("train/ar_tar", penalty, on_step=False, on_epoch=True, batch_size=size)
        acc = ((logits.argmax(-1) == batch.tgt) & real).sum() / real.sum()
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        self.log("train/ppl", nll.detach().exp(), on_step=True, on_epoch=False, batch_size=size)
        self.log("train/acc", acc, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: Batch, batch_idx: int, stage: str) -> None:
        # Validation and test decode in fp32 even when training autocasts to bf16
        # (`trainer.precision=bf16-mixed`): the checkpoint is then chosen, and val/test metrics
        # reported, by the same decoder the translate and evaluate CLIs ship, and the metrics
        # compare across machines whatever precision each trained in. Only touched when a mixed
        # precision is on: torch before 2.5 refuses any autocast context on MPS.
        mixed = self._trainer is not None and str(self._trainer.precision).endswith("-mixed")
        with torch.autocast(self.device.type, enabled=False) if mixed else nullcontext():
            self._evaluate_fp32(batch, batch_idx, stage)

    def _evaluate_fp32(self, batch: Batch, batch_idx: int, stage: str) -> None:
        assert self.net is not None
        pad = self.tgt_vocab.pad_idx
        tgt = batch.tgt
        real = tgt != pad
        encoded = self.net.encode(batch.src, batch.src_lengths)  # shared by both decodes
        forced, _ = self.net(batch.src, batch.src_lengths, tgt, pr_force=1.0, encoded=encoded)
        nll = F.cross_entropy(
            forced.flatten(0, 1), tgt.flatten(), ignore_index=pad, reduction="sum"
        )
        self.metrics[f"{stage}_nll"].update(nll)
        self.metrics[f"{stage}_tokens"].update(real.sum())
        self.metrics[f"{stage}_correct"].update(((forced.argmax(-1) == tgt) & real).sum())
        # One greedy pass serves BLEU (each sentence ends at eos or at its own length limit; the
        # reference plays no part) and the lesson's loss (the logits of the reference's steps).
        out = greedy(
            self.net,
            batch.src,
            batch.src_lengths,
            min_len=tgt.size(1),
            return_logits=True,
            encoded=encoded,
        )
        assert out.logits is not None
        self.lesson_loss[stage].update(
            self.lesson_seq2seq_loss(out.logits[:, : tgt.size(1)], tgt, out.all_done_step),
            tgt.size(0),
        )
        hyp_tokens = [self.tgt_vocab.decode(row) for row in out.tokens.tolist()]
        hypotheses = [self.detokenizer(tokens) for tokens in hyp_tokens]
        references = batch.references or (None,) * len(hypotheses)
        scored = [i for i, refs in enumerate(references) if refs is not None]
        self.bleu[stage].update(
            [hypotheses[i] for i in scored],
            [references[i] for i in scored],  # type: ignore[misc]
        )
        if stage == "val" and batch_idx == 0 and self.trainer.is_global_zero:
            self._collect_examples(batch, hyp_tokens, hypotheses, out.attention)

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
        hyp_tokens: list[list[str]],
        hypotheses: list[str],
        attention: torch.Tensor | None,
    ) -> None:
        sources = [self.src_vocab.decode(row) for row in batch.src.tolist()]
        refs = batch.references or (None,) * len(hypotheses)
        references = [
            r[0] if r else self.detokenizer(self.tgt_vocab.decode(row))
            for r, row in zip(refs, batch.tgt.tolist(), strict=True)
        ]
        n = self.hparams.n_samples
        self._samples = [
            (" ".join(s), r, h)
            for s, r, h in zip(sources[:n], references[:n], hypotheses[:n], strict=True)
        ]
        self._heatmaps = []
        if attention is None:
            return
        for i in range(min(self.hparams.n_heatmaps, len(sources))):
            words = [*hyp_tokens[i], "_eos_"][: attention.size(1)]  # no eos if out of steps
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
            "bleu": self.bleu[stage].compute(),
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
