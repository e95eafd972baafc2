"""``TranslationDataModule``: prepared pairs (``prepare.py``) -> length-aware batches per rank.

``prepare_data`` (local rank 0 of each node) runs the preparation (tokenise, split,
vocabularies, truncation, ids, word vectors, report; cached under ``cache_dir/<hash>/``);
``setup`` (every rank) only loads it. The vocabularies, tokenizer settings and the detokenizer
(``model_info``) travel into the checkpoint. Training batches come from the sort-ish sampler
(``sampler.py``), sharded over DDP ranks by the sampler itself and resumable mid-epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from lit_common.ranges import SIZE, Int, Range, Real, check_ranges
from lit_common.resumable import (
    ResumableDataLoader,
    SameWorldOnResume,
    private_generator,
    trainer_batches_done,
)
from lit_seq2seq.corpus import Corpus
from lit_seq2seq.dataset import Collate, PairDataset
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.prepare import Preparation
from lit_seq2seq.sampler import SortishSampler, SortSampler
from lit_seq2seq.vocab import Vocab
from lit_seq2seq.wordvecs import VectorSource


class TranslationDataModule(SameWorldOnResume, pl.LightningDataModule):
    """French -> English pairs, tokenised, numericalised, cached, and batched by length.

    Args:
        train: the training corpus (see corpus.py).
        valid: a validation corpus; ``None`` splits ``valid_fraction`` of ``train`` off instead.
        test: an optional test corpus.
        valid_fraction: share of distinct English sentences held out when ``valid`` is ``None``
            (split by English sentence, so no reference appears in both splits).
        split_seed: seed of that split.
        lowercase: lowercase tokens.
        n_process: processes tokenising shards of the corpus at once (1: in this process).
        max_vocab: most entries per vocabulary, specials included (lesson: 40,000).
        min_freq: least training count for a word to get its own entry.
        src_len_percentile: French training sequences are cut at this length percentile
            (lesson: 97).
        tgt_len_percentile: English training sequences are cut at this percentile (lesson: 99).
        batch_size: most pairs per training batch on each device (lesson: 125).
        eval_batch_size: most pairs per validation/test batch; default ``batch_size``.
        chunk_batches: batches per length-sorted chunk of the sort-ish training sampler.
        num_workers: DataLoader workers.
        seed: sort-ish shuffling seed, shared by all ranks.
        src_vectors: French word vectors for the encoder embedding.
        tgt_vectors: English word vectors for the decoder embedding.
        src_emb_dim: encoder embedding size the vectors must have.
        tgt_emb_dim: decoder embedding size the vectors must have.
        cache_dir: where prepared data goes.
    """

    RANGES: ClassVar[dict[str, Range]] = {
        "valid_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
        "split_seed": Int(0, 2**32 - 1),
        "n_process": Int(1, 256),
        "max_vocab": Int(5, 10_000_000),  # the 4 specials and at least one word
        "min_freq": Int(1),
        "src_len_percentile": Real(0.0, 100.0, low_open=True),
        "tgt_len_percentile": Real(0.0, 100.0, low_open=True),
        "batch_size": SIZE,
        "eval_batch_size": Int(1, 65_536, null=True),
        "chunk_batches": Int(1, 1_000_000),
        "num_workers": Int(0, 256),
        "seed": Int(0, 2**32 - 1),
        "src_emb_dim": SIZE,
        "tgt_emb_dim": SIZE,
    }

    def __init__(
        self,
        train: Corpus,
        valid: Corpus | None = None,
        test: Corpus | None = None,
        valid_fraction: float = 0.1,
        split_seed: int = 42,
        lowercase: bool = True,
        n_process: int = 1,
        max_vocab: int = 40_000,
        min_freq: int = 1,
        src_len_percentile: float = 100.0,
        tgt_len_percentile: float = 100.0,
        batch_size: int = 125,
        eval_batch_size: int | None = None,
        chunk_batches: int = 100,
        num_workers: int = 0,
        seed: int = 0,
        src_vectors: VectorSource | None = None,
        tgt_vectors: VectorSource | None = None,
        src_emb_dim: int = 300,
        tgt_emb_dim: int = 300,
        cache_dir: str | Path = "data/cache",
    ) -> None:
        super().__init__()
        check_ranges(locals(), self.RANGES)
        self.prep = Preparation(
            corpora={"train": train, "valid": valid, "test": test},
            cache_root=Path(cache_dir),
            vectors={"src": src_vectors or VectorSource(), "tgt": tgt_vectors or VectorSource()},
            emb_dims={"src": src_emb_dim, "tgt": tgt_emb_dim},
            valid_fraction=valid_fraction,
            split_seed=split_seed,
            lowercase=lowercase,
            n_process=n_process,
            max_vocab=max_vocab,
            min_freq=min_freq,
            percentiles={"src": src_len_percentile, "tgt": tgt_len_percentile},
            seed=seed,
        )
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.chunk_batches, self.num_workers, self.seed = chunk_batches, num_workers, seed
        self.src_vocab: Vocab | None = None
        self.tgt_vocab: Vocab | None = None
        self.datasets: dict[str, PairDataset] = {}
        self.report: dict[str, Any] = {}
        self.pretrained: dict[str, np.ndarray] = {}
        self.detokenizer = Detokenizer()

    # -- the preparation's settings and cache (lit_seq2seq/prepare.py) -------------------------
    @property
    def corpora(self) -> dict[str, Corpus | None]:
        return self.prep.corpora

    @property
    def emb_dims(self) -> dict[str, int]:
        return self.prep.emb_dims

    @property
    def lowercase(self) -> bool:
        return self.prep.lowercase

    @property
    def cache_path(self) -> Path:
        return self.prep.cache_path

    @property
    def vectors_path(self) -> Path:
        return self.prep.vectors_path

    # -- Lightning hooks: prepare (local rank 0), load (every rank) ------------------------------
    def prepare_data(self) -> None:
        self.prep.run()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        prepared = self.prep.load()
        self.src_vocab, self.tgt_vocab = prepared.src_vocab, prepared.tgt_vocab
        self.report, self.detokenizer = prepared.report, prepared.detokenizer
        self.datasets, self.pretrained = prepared.datasets, prepared.pretrained

    def model_info(self) -> dict[str, Any]:
        """What translation needs besides weights: stored in the checkpoint."""
        assert self.src_vocab is not None and self.tgt_vocab is not None, "call setup() first"
        return {
            "src_vocab": self.src_vocab.itos,
            "tgt_vocab": self.tgt_vocab.itos,
            "src_lang": "fr",
            "tgt_lang": "en",
            "lowercase": self.lowercase,
            "max_tgt_len": int(self.report["length_limits"]["tgt"]),
            "detokenizer": self.detokenizer.to_dict(),
        }

    # -- loaders ------------------------------------------------------------------------------
    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        connector = getattr(trainer, "_accelerator_connector", None)
        if trainer.world_size > 1 and getattr(connector, "use_distributed_sampler", False):
            raise RuntimeError(
                "TranslationDataModule shards batches itself; set trainer.use_distributed_sampler="
                "false (configs/trainer/default.yaml does)"
            )
        return trainer.world_size, trainer.global_rank

    def _loader(self, split: str, sampler: Any) -> DataLoader:
        assert self.src_vocab is not None
        return DataLoader(
            self.datasets[split],
            batch_sampler=sampler,
            collate_fn=Collate(self.src_vocab.pad_idx),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=private_generator(),
        )

    def train_dataloader(self) -> DataLoader:
        world, rank = self._ranks()
        train = self.datasets["train"]
        sampler = SortishSampler(
            train.src.lengths(), self.batch_size, world, rank, self.seed, self.chunk_batches,
            tgt_lengths=train.tgt.lengths(),
        )  # fmt: skip
        assert self.src_vocab is not None
        # Resumes mid-epoch, and forwards set_epoch so the sort-ish order changes every epoch.
        return ResumableDataLoader(
            self.datasets["train"],
            sampler,
            trainer_batches_done(self.trainer),
            collate_fn=Collate(self.src_vocab.pad_idx),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        world, rank = self._ranks()
        lengths = self.datasets[split].src.lengths()
        return self._loader(split, SortSampler(lengths, self.eval_batch_size, world, rank))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("valid")

    def test_dataloader(self) -> DataLoader:
        if "test" not in self.datasets:
            raise RuntimeError("no test corpus configured (data.test)")
        return self._eval_loader("test")
