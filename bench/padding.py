"""Padding efficiency of sort-ish batching against random batching over one training epoch.

Tokenises ``questions.train.tsv`` (../shared/data/fra-eng) with the real data pipeline, then counts,
over one epoch of batches of ``--batch-size``, real tokens / padded tokens (source and target
together; padded = batch size x longest sequence, per batch). The last line is one JSON object:
``{"sortish": r, "random": r}`` plus details.

    python bench/padding.py [--batch-size 125] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from lit_seq2seq.corpus import TsvCorpus
from lit_seq2seq.datamodule import TranslationDataModule
from lit_seq2seq.sampler import SortishSampler
from lit_seq2seq.wordvecs import VectorSource


def efficiency(batches: list[np.ndarray], src: np.ndarray, tgt: np.ndarray) -> float:
    real = sum(int(src[b].sum() + tgt[b].sum()) for b in batches)
    padded = sum(len(b) * int(src[b].max() + tgt[b].max()) for b in batches)
    return real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=125)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = args.data_dir / "fra-eng" / "questions.train.tsv"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; pass --data-dir (see ../shared/data/README.md)")
    with tempfile.TemporaryDirectory() as cache:
        dm = TranslationDataModule(
            TsvCorpus(path, columns=["fr", "en"]),
            valid=TsvCorpus(path.with_name("questions.valid.tsv"), columns=["fr", "en"]),
            cache_dir=cache,
            src_vectors=VectorSource(kind="none"),
            tgt_vectors=VectorSource(kind="none"),
        )
        dm.prepare_data()
        dm.setup("fit")
        train = dm.datasets["train"]
        src, tgt = train.src.lengths(), train.tgt.lengths()
    sortish = [np.asarray(b) for b in SortishSampler(src, args.batch_size, seed=args.seed)]
    order = np.random.default_rng(args.seed).permutation(len(src))
    random = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    result = {
        "sortish": round(efficiency(sortish, src, tgt), 4),
        "random": round(efficiency(random, src, tgt), 4),
        "pairs": len(src),
        "batch_size": args.batch_size,
        "batches": {"sortish": len(sortish), "random": len(random)},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
