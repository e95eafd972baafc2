"""Translation quality on the real Tatoeba questions within a time budget.

Trains ``--experiment`` (default ``seq2seq_all``) on ``questions.train.tsv`` (or ``pairs.train.tsv``
with ``--large``) for at most ``--minutes``, then evaluates the final weights greedily on the fixed
valid and test splits. The last line is one JSON object with ``valid_bleu``, ``test_bleu``,
``valid_loss`` (padding excluded), ``lesson_valid_loss`` (the lesson's seq2seq_loss), ``perplexity``
(valid), ``train_tokens_per_s`` (target tokens), ``epochs`` and ``checkpoint``.

    python bench/seq2seq_quality.py --minutes 10 [--experiment seq2seq_base] [--large]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

import train


class TokenThroughput(pl.Callback):
    """Target tokens per second of training batches (forward, backward and step)."""

    def __init__(self) -> None:
        self.tokens, self.seconds, self._start = 0, 0.0, 0.0

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, idx: int) -> None:
        self.seconds += time.perf_counter() - self._start
        self.tokens += int(batch.tgt_lengths.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--experiment", default="seq2seq_all")
    parser.add_argument("--large", action="store_true", help="train on pairs.train.tsv")
    parser.add_argument("--out", type=Path, default=Path("logs/bench/seq2seq_quality"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)

    out = (
        args.out
        / f"{args.experiment}{'-large' if args.large else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    seconds = int(args.minutes * 60)
    max_time = (
        f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"  # DD:HH:MM:SS
    )
    cfg = train.compose(
        [
            f"experiment={args.experiment}",
            f"data={'tatoeba_pairs' if args.large else 'tatoeba_questions'}",
            "logger=csv",
            f"+trainer.max_time='{max_time}'",
            "trainer.enable_progress_bar=false",
            "~callbacks.rich_progress_bar",
            *args.overrides,
        ],
        out,
    )
    throughput = TokenThroughput()
    datamodule, model, trainer = train.build(cfg, extra_callbacks=[throughput])
    trainer.fit(model, datamodule=datamodule)
    epochs = trainer.current_epoch
    checkpoint = trainer.checkpoint_callback.last_model_path
    valid = trainer.validate(model, datamodule=datamodule, verbose=False)[0]
    test = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    print(
        json.dumps(
            {
                "experiment": args.experiment,
                "train_data": "pairs.train.tsv" if args.large else "questions.train.tsv",
                "minutes_budget": args.minutes,
                "valid_bleu": round(valid["val/bleu"], 3),
                "test_bleu": round(test["test/bleu"], 3),
                "valid_loss": round(valid["val/loss"], 4),
                "lesson_valid_loss": round(valid["val/lesson_loss"], 4),
                "perplexity": round(valid["val/ppl"], 3),
                "test_loss": round(test["test/loss"], 4),
                "train_tokens_per_s": round(throughput.tokens / max(throughput.seconds, 1e-9), 1),
                "epochs": epochs,
                "checkpoint": checkpoint,
            }
        )
    )


if __name__ == "__main__":
    main()
