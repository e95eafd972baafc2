"""What AWD-LSTM's regularisers cost in training speed: the tuned recipe against the same recipe
with every regulariser on, in one process, alternating, on the real Tatoeba question splits.

Each round trains ``experiment=seq2seq_tuned`` (``plain``) and then the same with every switch of
``model.net`` on at AWD-LSTM's rates (``all_on``: weight drop 0.5, embedding dropout 0.1, locked
dropout 0.4 in / 0.25 between layers / 0.4 out, word dropout 0.1, AR 2, TAR 1, on both sides) for
``--epochs`` epochs; ``--rounds`` rounds alternate the two so a machine that speeds up or slows
down mid-run affects both alike. Tokens/s count real target tokens per wall-clock second of
fit (``train_tokens_per_s``, validation and checkpoints included) and per second inside training
batches (``batch_tokens_per_s``). The last line is one JSON object: per variant the mean of
each figure over rounds and its per-round values, and ``ratio_train_tokens_per_s`` /
``ratio_batch_tokens_per_s`` (all_on over plain; the target is >= 0.85).

    python bench/regulariser_speed.py [--epochs 2] [--rounds 2] [overrides ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from seq2seq_quality import measured_fit

ALL_ON = [
    *(f"model.net.{side}_weight_drop=0.5" for side in ("enc", "dec")),
    *(f"model.net.{side}_embed_drop=0.1" for side in ("enc", "dec")),
    *(f"model.net.{side}_locked_in=0.4" for side in ("enc", "dec")),
    *(f"model.net.{side}_locked_hidden=0.25" for side in ("enc", "dec")),
    *(f"model.net.{side}_locked_out=0.4" for side in ("enc", "dec")),
    *(f"model.net.{side}_word_drop=0.1" for side in ("enc", "dec")),
    "model.net.ar_alpha=2.0",
    "model.net.tar_beta=1.0",
]
VARIANTS = {"plain": [], "all_on": ALL_ON}


def fit(variant: list[str], epochs: int, overrides: list[str], out: Path) -> dict[str, Any]:
    _, _, trainer, throughput = measured_fit(
        [
            "experiment=seq2seq_tuned",
            "data=tatoeba_questions",
            "logger=none",
            f"trainer.max_epochs={epochs}",
            *variant,
            *overrides,
        ],
        out,
    )
    return throughput.rates() | {
        "val_bleu": float(trainer.callback_metrics.get("val/bleu", float("nan"))),
        "precision": str(trainer.precision),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit")
    parser.add_argument("--rounds", type=int, default=2, help="plain/all_on pairs, alternating")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both variants")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, variant in VARIANTS.items():
                out = Path(tmp) / f"{name}-{r}-{time.strftime('%H%M%S')}"
                runs[name].append(fit(variant, args.epochs, args.overrides, out))
                print(f"round {r} {name}: {runs[name][-1]}", flush=True)
    result: dict[str, Any] = {"epochs": args.epochs, "rounds": args.rounds}
    for name, fits in runs.items():
        result[name] = {
            key: round(statistics.mean(f[key] for f in fits), 1)
            for key in ("train_tokens_per_s", "batch_tokens_per_s")
        } | {
            "per_round_train_tokens_per_s": [round(f["train_tokens_per_s"], 1) for f in fits],
            "precision": fits[0]["precision"],
        }
    for key in ("train_tokens_per_s", "batch_tokens_per_s"):
        result[f"ratio_{key}"] = round(result["all_on"][key] / result["plain"][key], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
