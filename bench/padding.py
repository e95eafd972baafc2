"""Padding efficiency of the training batches: sort-ish against random batching.

Tokenises ``fra-eng/questions.train.tsv`` (under ``$SHARED_DATA_DIR`` or ../shared/data) with the
real data pipeline and builds the training sampler exactly as ``TranslationDataModule`` does, then
counts over ``--epochs`` epochs real tokens / padded tokens (source and target together; padded =
batch size x (longest source + longest target), per batch). It also checks that the order stays
random: the share of batches that reappear unchanged in the next epoch, and that two DDP ranks get
disjoint items. The last line is one JSON object:
``{"sortish": r, "random": r, "equal_size_sorted": r, ...}``.

    python bench/padding.py [--batch-size 125] [--chunk-batches 100] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
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
    parser.add_argument("--chunk-batches", type=int, default=100)  # configs/data/base.yaml
    parser.add_argument("--epochs", type=int, default=3)
    default_dir = os.environ.get("SHARED_DATA_DIR") or Path(__file__).parents[2] / "shared/data"
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
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
            batch_size=args.batch_size,
            chunk_batches=args.chunk_batches,
            seed=args.seed,
        )
        dm.prepare_data()
        dm.setup("fit")
        sampler = dm.train_dataloader().batch_sampler.batches  # the datamodule's SortishSampler
        train = dm.datasets["train"]
        src, tgt = train.src.lengths(), train.tgt.lengths()
    assert isinstance(sampler, SortishSampler)
    epochs = []
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        epochs.append([np.asarray(b) for b in sampler])
    # The same sorted order cut into equal-size batches: what the boundary placement adds.
    equal = []
    for epoch in range(args.epochs):
        perm = np.random.default_rng([args.seed, epoch]).permutation(len(src))
        chunk = args.batch_size * args.chunk_batches
        order = np.concatenate(
            [sampler._snake(perm[i : i + chunk]) for i in range(0, len(perm), chunk)]
        )
        equal += np.array_split(order, len(epochs[epoch]))
    rng = np.random.default_rng(args.seed)
    random = []
    for _ in range(args.epochs):
        order = rng.permutation(len(src))
        random += [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    repeated = [
        len({tuple(sorted(b)) for b in a} & {tuple(sorted(b)) for b in b_}) / len(a)
        for a, b_ in itertools.pairwise(epochs)
    ]
    ranks = [
        SortishSampler(src, args.batch_size, 2, r, args.seed, args.chunk_batches, tgt)
        for r in (0, 1)
    ]
    items = [set(i for b in rank for i in b) for rank in ranks]
    result = {
        "sortish": round(efficiency([b for e in epochs for b in e], src, tgt), 4),
        "random": round(efficiency(random, src, tgt), 4),
        "equal_size_sorted": round(efficiency(equal, src, tgt), 4),
        "per_epoch": [round(efficiency(e, src, tgt), 4) for e in epochs],
        "batches_repeated_next_epoch": round(max(repeated, default=0.0), 4),
        "ddp_ranks_disjoint": not (items[0] & items[1]),
        "ddp_batches_per_rank": [len(r) for r in ranks],
        "pairs": len(src),
        "batch_size": args.batch_size,
        "batches_per_epoch": len(epochs[0]),
        "mean_batch": round(len(src) / len(epochs[0]), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
