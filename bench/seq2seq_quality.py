"""Translation quality on the real Tatoeba questions within a time budget.

Trains ``--experiment`` (default ``seq2seq_tuned``) on ``questions.train.tsv`` (or
``pairs.train.tsv`` with ``--large``) for at most ``--minutes``, keeps the checkpoint with the best
validation BLEU, and evaluates it on the fixed valid and test splits: the module's greedy metrics,
then the translate CLI's decoding (greedy and beam ``--beam``) scored by ``lit_seq2seq.evaluate``.
The last line is one JSON object with ``checkpoint`` (the best one), ``valid_bleu``, ``test_bleu``
(greedy), ``test_bleu_beam``, ``valid_loss`` (teacher forced, padding excluded), ``perplexity``
(valid), ``lesson_valid_loss`` (the lesson's seq2seq_loss on greedy decodes),
``train_tokens_per_s`` (target tokens per wall-clock second of fit: data loading, validation and
checkpointing included; ``batch_tokens_per_s`` counts the seconds inside training batches only),
``epochs``, ``best_epoch``, ``fit_seconds``, ``greedy_sentences_per_s``,
``beam_sentences_per_s``, ``beam_cost`` (beam seconds per sentence / greedy's) and ``precision``
(the trainer's training precision, as resolved on this machine: ``bf16-mixed`` or ``32-true``;
validation, test and the translate CLI decode in fp32 either way). ``valid_bleu`` and
``test_bleu`` are the module's metrics; ``test_bleu_greedy`` and ``test_bleu_beam`` come from the
translate CLI's decoding.

``--with-peer`` then trains Joey NMT 2.3 on the same split for the same budget on the same
machine (``bench/peer_joey.py``, run after this project's model, never beside it) and adds
``peer_test_bleu``, ``peer_train_tokens_per_s``, ``peer_epochs`` (epochs begun; ``epochs`` counts
finished ones), ``peer_device``, ``tokens_per_s_ratio`` (this project's over the peer's) and
``test_bleu_difference`` (``test_bleu_greedy``, this project's checkpoint through its translate
path, minus the peer's; both scored as "Scoring" in the README describes). The project's JSON is
printed once before the peer starts, so a failing peer does not lose it.

    python bench/seq2seq_quality.py --minutes 15 [--experiment seq2seq_tuned] [--large]
        [--with-peer]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

import train
from lit_seq2seq.bleu import corpus_scores
from lit_seq2seq.evaluate import grouped_pairs, translate_all
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.translator import Translator


class TokenThroughput(pl.Callback):
    """Real target tokens of the training batches over the wall-clock seconds of the whole fit
    (``seconds``), and over the seconds spent inside training batches alone (``batch_seconds``:
    forward, backward and step: the narrower figure, which leaves out validation and loading)."""

    def __init__(self) -> None:
        self.tokens, self.seconds, self.batch_seconds = 0, 0.0, 0.0
        self._start = self._batch_start = 0.0

    def on_fit_start(self, trainer: Any, module: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, idx: int) -> None:
        self.batch_seconds += time.perf_counter() - self._batch_start
        self.tokens += int(batch.tgt_lengths.sum())

    def on_fit_end(self, trainer: Any, module: Any) -> None:
        self.seconds = time.perf_counter() - self._start

    def rates(self) -> dict[str, float]:
        """``train_tokens_per_s`` (wall clock of the fit) and ``batch_tokens_per_s``."""
        return {
            "train_tokens_per_s": self.tokens / max(self.seconds, 1e-9),
            "batch_tokens_per_s": self.tokens / max(self.batch_seconds, 1e-9),
        }


def measured_fit(overrides: list[str], out: Path) -> tuple[Any, Any, Any, TokenThroughput]:
    """Compose ``overrides`` (quiet: no progress bar), build and fit with a ``TokenThroughput``;
    returns the datamodule, model, trainer and the throughput."""
    quiet = ["trainer.enable_progress_bar=false", "~callbacks.rich_progress_bar"]
    cfg = train.compose([*quiet, *overrides], out)  # later overrides win
    throughput = TokenThroughput()
    datamodule, model, trainer = train.build(cfg, extra_callbacks=[throughput])
    trainer.fit(model, datamodule=datamodule)
    return datamodule, model, trainer, throughput


def decode_test(checkpoint: str, pairs: Path, beam: int) -> dict[str, Any]:
    """Greedy and beam BLEU of the translate CLI's decoding, and their speeds."""
    sources, references, _ = grouped_pairs(pairs, ["fr", "en"])
    module = Seq2SeqModule.from_checkpoint(checkpoint)
    out: dict[str, Any] = {}
    seconds = {}
    for name, size in (("greedy", 1), ("beam", beam)):
        translator = Translator(module, beam=size, attention=False)
        hypotheses, seconds[name] = translate_all(translator, sources, 100)
        out[f"test_bleu_{name}"] = corpus_scores(hypotheses, references)["bleu"]
        out[f"{name}_sentences_per_s"] = round(len(sources) / seconds[name], 1)
    out["beam_cost"] = round(seconds["beam"] / seconds["greedy"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--experiment", default="seq2seq_tuned")
    parser.add_argument("--large", action="store_true", help="train on pairs.train.tsv")
    parser.add_argument("--beam", type=int, default=5, help="beam size of the beam figures")
    parser.add_argument("--out", type=Path, default=Path("logs/bench/seq2seq_quality"))
    parser.add_argument(
        "--with-peer", action="store_true", help="then Joey NMT 2.3 (bench/peer_joey.py)"
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    if args.with_peer and args.large:
        parser.error("--with-peer compares on the question splits; leave out --large")
    if args.with_peer:  # before the run: a missing Joey or data must not cost the 15 minutes
        from peer_joey import REPO, ensure_joey

        ensure_joey(REPO / ".venv-joey")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)

    out = (
        args.out
        / f"{args.experiment}{'-large' if args.large else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    seconds = int(args.minutes * 60)
    max_time = (
        f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"  # DD:HH:MM:SS
    )
    datamodule, model, trainer, throughput = measured_fit(
        [
            f"experiment={args.experiment}",
            f"data={'tatoeba_pairs' if args.large else 'tatoeba_questions'}",
            "logger=csv",
            f"+trainer.max_time='{max_time}'",
            *args.overrides,
        ],
        out,
    )
    epochs = trainer.current_epoch
    best = train.best_checkpoint(trainer)
    best_epoch = torch.load(best, weights_only=True, map_location="cpu")["epoch"]
    valid = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    test = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    test_pairs = datamodule.corpora["test"].path
    result = {
        "experiment": args.experiment,
        "train_data": "pairs.train.tsv" if args.large else "questions.train.tsv",
        "minutes_budget": args.minutes,
        "precision": str(trainer.precision),
        "valid_bleu": round(valid["val/bleu"], 2),
        "test_bleu": round(test["test/bleu"], 2),
        "valid_loss": round(valid["val/loss"], 4),
        "lesson_valid_loss": round(valid["val/lesson_loss"], 4),
        "perplexity": round(valid["val/ppl"], 3),
        "test_loss": round(test["test/loss"], 4),
        **{key: round(value, 1) for key, value in throughput.rates().items()},
        "fit_seconds": round(throughput.seconds, 1),
        "epochs": epochs,
        "best_epoch": best_epoch,
        "checkpoint": best,
    }
    result |= decode_test(best, test_pairs, args.beam)
    if args.with_peer:
        from peer_joey import REPO, run_peer

        print(json.dumps(result), flush=True)  # this project's figures, kept if the peer fails
        peer = run_peer(args.minutes, out / "peer_joey", REPO / ".venv-joey", test_pairs.parent)
        result |= {
            "peer_test_bleu": peer["test_bleu"],
            "peer_train_tokens_per_s": peer["train_tokens_per_s"],
            "peer_epochs": peer["epochs"],
            "peer_device": peer["device"],
            "tokens_per_s_ratio": round(
                result["train_tokens_per_s"] / max(peer["train_tokens_per_s"], 1e-9), 2
            ),
            # both decoded greedily by their translate path and scored by corpus_scores
            "test_bleu_difference": round(result["test_bleu_greedy"] - peer["test_bleu"], 2),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
