"""``TranslationDataModule``: corpus -> spaCy tokens -> vocab -> ids -> length-aware batches.

``prepare_data`` (rank 0 only) reads, tokenises, splits, builds both vocabularies on the training
split, truncates training pairs at length percentiles, numericalises and looks up word vectors, and
writes all of it to ``cache_dir/<hash>/`` as NumPy and JSON; the hash covers the corpus files and
every setting that changes the result, so an unchanged configuration reuses the cache. ``setup``
(every rank) only loads. What was dropped, truncated or unknown is counted in ``report.json`` and
logged.

Validation and test pairs keep their raw English sentences: BLEU scores detokenised translations
against them (never against vocabulary ids, where an unknown word would match ``_unk_``), and a
French sentence that occurs several times in a split is one segment with all its references. The
detokenizer is learned from the training targets (``detokenizer.py``) and travels with the
vocabularies into the checkpoint.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import spacy
from rich.progress import Progress
from torch.utils.data import DataLoader

from lit_common.cache import content_hash, load_array, staged
from lit_common.errors import InputError
from lit_common.resumable import ResumableDataLoader, private_generator, trainer_batches_done
from lit_seq2seq.corpus import Corpus, CorpusError, ReadStats
from lit_seq2seq.dataset import Collate, PairDataset, Ragged, References
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.sampler import SortishSampler, SortSampler
from lit_seq2seq.tokenizer import Tokenizer
from lit_seq2seq.vocab import SPECIALS, Vocab
from lit_seq2seq.wordvecs import VectorsError, VectorSource, embedding_matrix, lookup

log = logging.getLogger(__name__)
CACHE_FORMAT = 2
SPLITS = ("train", "valid", "test")
PER_PAIR = ("src", "tgt", "raw_src", "raw_tgt", "spaced_tgt")  # lists split pair by pair
ROUND_TRIP_SAMPLE = 2000  # training references re-tokenised to check the detokenizer


def references_by_source(raw_src: list[str], raw_tgt: list[str]) -> list[References]:
    """Per pair, every reference of its French sentence at its first occurrence, else None."""
    refs: dict[str, list[str]] = {}
    for fr, en in zip(raw_src, raw_tgt, strict=True):
        refs.setdefault(fr, []).append(en)
    seen: set[str] = set()
    out: list[References] = []
    for fr in raw_src:
        out.append(None if fr in seen else refs[fr])
        seen.add(fr)
    return out


class TranslationDataModule(pl.LightningDataModule):
    """French -> English pairs, tokenised, numericalised, cached, and batched by length.

    Args:
        train: the training corpus (see corpus.py).
        valid: a validation corpus; ``None`` splits ``valid_fraction`` of ``train`` off instead.
        test: an optional test corpus.
        valid_fraction: share of distinct English sentences held out when ``valid`` is ``None``
            (split by English sentence, so no reference appears in both splits).
        split_seed: seed of that split.
        lowercase: lowercase tokens.
        n_process: spaCy ``nlp.pipe`` processes.
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
        if not 0 < valid_fraction < 1:
            raise InputError(f"valid_fraction={valid_fraction}: expected 0 < fraction < 1")
        for name, pct in (("src", src_len_percentile), ("tgt", tgt_len_percentile)):
            if not 0 < pct <= 100:
                raise InputError(f"{name}_len_percentile={pct}: expected 0 < percentile <= 100")
        self.corpora = {"train": train, "valid": valid, "test": test}
        self.valid_fraction, self.split_seed = valid_fraction, split_seed
        self.lowercase, self.n_process = lowercase, n_process
        self.max_vocab, self.min_freq = max_vocab, min_freq
        self.percentiles = {"src": src_len_percentile, "tgt": tgt_len_percentile}
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.chunk_batches, self.num_workers, self.seed = chunk_batches, num_workers, seed
        self.vectors = {"src": src_vectors or VectorSource(), "tgt": tgt_vectors or VectorSource()}
        self.emb_dims = {"src": src_emb_dim, "tgt": tgt_emb_dim}
        self.cache_root = Path(cache_dir)
        self.src_vocab: Vocab | None = None
        self.tgt_vocab: Vocab | None = None
        self.datasets: dict[str, PairDataset] = {}
        self.report: dict[str, Any] = {}
        self.pretrained: dict[str, np.ndarray] = {}
        self.detokenizer = Detokenizer()

    # -- cache keys -------------------------------------------------------------------------
    def _data_key(self) -> str:
        return content_hash(
            {
                "format": CACHE_FORMAT,
                "corpora": {k: c.fingerprint() if c else None for k, c in self.corpora.items()},
                "tokenizer": {"lowercase": self.lowercase, "spacy": spacy.__version__},
                "split": [self.valid_fraction, self.split_seed],
                "vocab": [self.max_vocab, self.min_freq],
                "percentiles": self.percentiles,
            }
        )

    def _vectors_key(self) -> str:
        return content_hash({k: [vars(self.vectors[k]), self.emb_dims[k]] for k in ("src", "tgt")})

    @property
    def cache_path(self) -> Path:
        return self.cache_root / self._data_key()

    @property
    def vectors_path(self) -> Path:
        return self.cache_path / f"vectors-{self._vectors_key()}"

    # -- preparation (rank 0) -----------------------------------------------------------------
    def prepare_data(self) -> None:
        if not (self.cache_path / "report.json").is_file():
            self._prepare_tokens()
        if not (self.vectors_path / "report.json").is_file():
            self._prepare_vectors()
        self._log_report()

    def _read_and_tokenize(self, split: str, corpus: Corpus, progress: Progress) -> dict[str, Any]:
        stats = ReadStats()
        pairs = list(corpus.pairs(stats))
        task = progress.add_task(f"tokenising {split}", total=2 * len(pairs))
        out: dict[str, Any] = {"read": vars(stats)}
        for side, lang, column in (("src", "fr", 0), ("spaced_tgt", "en", 1)):
            tokenizer = Tokenizer(lang, self.lowercase, self.n_process)
            spaced = []
            for toks in tokenizer.pipe_spaced(p[column] for p in pairs):
                spaced.append(toks)
                progress.advance(task)
            out[side] = spaced
        out["src"] = [[t for t, _ in s] for s in out["src"]]
        out["tgt"] = [[t for t, _ in s] for s in out["spaced_tgt"]]
        out["raw_src"] = [p[0] for p in pairs]
        out["raw_tgt"] = [p[1] for p in pairs]
        keep = [i for i, (s, t) in enumerate(zip(out["src"], out["tgt"], strict=True)) if s and t]
        out["dropped_empty_tokens"] = len(pairs) - len(keep)
        for key in PER_PAIR:
            out[key] = [out[key][i] for i in keep]
        if not keep:
            raise CorpusError(
                f"the {split} corpus is empty after reading and filtering ({stats.summary()}); "
                "make sure the file, its columns and the filter patterns are right"
            )
        return out

    def _split_valid(self, train: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Hold out ``valid_fraction`` of the distinct English sentences, with all their pairs."""
        english = [" ".join(t) for t in train["tgt"]]
        distinct = sorted(set(english))
        rng = np.random.default_rng(self.split_seed)
        n_valid = max(1, round(len(distinct) * self.valid_fraction))
        held = {distinct[i] for i in rng.permutation(len(distinct))[:n_valid]}
        parts: dict[bool, dict[str, list]] = {True: {}, False: {}}
        for key in PER_PAIR:
            parts[True][key], parts[False][key] = [], []
            for value, e in zip(train[key], english, strict=True):
                parts[e in held][key].append(value)
        if not parts[False]["src"]:
            raise CorpusError("valid_fraction leaves no training pairs; lower it or add data")
        return {**train, **parts[False]}, {**parts[True], "read": None, "dropped_empty_tokens": 0}

    def _prepare_tokens(self) -> None:
        with staged(self.cache_path) as tmp:
            self._write_tokens(tmp)

    def _write_tokens(self, tmp: Path) -> None:
        report: dict[str, Any] = {"splits": {}}
        with Progress(transient=True) as progress:
            data = {
                split: self._read_and_tokenize(split, corpus, progress)
                for split, corpus in self.corpora.items()
                if corpus is not None
            }
        if "valid" not in data:
            data["train"], data["valid"] = self._split_valid(data["train"])
            report["valid_split"] = (
                f"{self.valid_fraction:.0%} of English sentences, seed {self.split_seed}"
            )
        vocabs, limits = {}, {}
        detokenizer = Detokenizer.learn(data["train"]["spaced_tgt"])
        (tmp / "detokenizer.json").write_text(json.dumps(detokenizer.to_dict()))
        report["detokenizer_round_trip"] = self._round_trip(detokenizer, data["train"]["tgt"])
        for side in ("src", "tgt"):
            token_counts = Counter(t for s in data["train"][side] for t in s)
            vocab = Vocab.from_counts(token_counts, self.max_vocab, self.min_freq)
            vocabs[side] = vocab
            vocab.save(tmp / f"vocab_{side}.json")
            counts = [0] * len(SPECIALS) + [token_counts[t] for t in vocab.itos[len(SPECIALS) :]]
            (tmp / f"counts_{side}.json").write_text(json.dumps(counts))
            lengths = [len(s) + 1 for s in data["train"][side]]  # + eos
            limits[side] = max(2, int(np.percentile(lengths, self.percentiles[side])))
        for split, part in data.items():
            info: dict[str, Any] = {
                "pairs": len(part["src"]),
                "read": part["read"],
                "dropped_empty_after_tokenising": part["dropped_empty_tokens"],
            }
            truncated = np.zeros(len(part["src"]), dtype=bool)
            for side in ("src", "tgt"):
                vocab, limit = vocabs[side], limits[side]
                ids = [vocab.encode(s) for s in part[side]]
                n_tokens = sum(len(s) for s in part[side])
                n_unk = sum(row.count(vocab.unk_idx) for row in ids)
                info[f"{side}_unk_rate"] = n_unk / max(1, n_tokens)
                if split == "train":
                    long = np.array([len(row) > limit for row in ids], dtype=bool)
                    truncated |= long
                    ids = [
                        [*row[: limit - 1], vocab.eos_idx] if len(row) > limit else row
                        for row in ids
                    ]
                else:
                    info[f"{side}_longer_than_train_limit"] = sum(len(row) > limit for row in ids)
                Ragged.from_lists(ids).save(tmp / f"{split}_{side}")
            if split == "train":
                info["truncated_pairs"] = int(truncated.sum())
            else:
                refs = references_by_source(part["raw_src"], part["raw_tgt"])
                (tmp / f"{split}_references.json").write_text(json.dumps(refs, ensure_ascii=False))
                info["scored_sources"] = sum(r is not None for r in refs)
            report["splits"][split] = info
        report["length_limits"] = {**limits, "percentiles": self.percentiles}
        report["vocab_sizes"] = {k: len(v) for k, v in vocabs.items()}
        (tmp / "report.json").write_text(json.dumps(report, indent=1))

    def _round_trip(self, detokenizer: Detokenizer, sentences: list[list[str]]) -> float:
        """Share of (a sample of) training targets that re-tokenise to the same tokens."""
        rng = np.random.default_rng(0)
        picked = rng.permutation(len(sentences))[:ROUND_TRIP_SAMPLE]
        tokenizer = Tokenizer("en", self.lowercase)
        texts = [detokenizer(sentences[i]) for i in picked]
        same = sum(
            tokens == sentences[i] for i, tokens in zip(picked, tokenizer.pipe(texts), strict=True)
        )
        return same / max(1, len(picked))

    def _prepare_vectors(self) -> None:
        with staged(self.vectors_path) as tmp:
            self._write_vectors(tmp)

    def _write_vectors(self, tmp: Path) -> None:
        report = {}
        for side in ("src", "tgt"):
            vocab = Vocab.load(self.cache_path / f"vocab_{side}.json")
            counts = json.loads((self.cache_path / f"counts_{side}.json").read_text())
            sentences: list[list[str]] = []
            if self.vectors[side].kind == "train":
                train = Ragged.load(self.cache_path / f"train_{side}")
                sentences = [vocab.decode(train[i]) for i in range(len(train))]
            found = lookup(self.vectors[side], vocab.itos, self.emb_dims[side], sentences)
            if not found and self.vectors[side].kind in ("fasttext", "vec", "spacy"):
                raise VectorsError(
                    f"none of the {len(vocab) - len(SPECIALS)} {side} words has a vector in "
                    f"{self.vectors[side].path}; make sure the vectors are for the "
                    f"{'French' if side == 'src' else 'English'} side (or use kind=train/none)"
                )
            source = self.vectors[side]
            matrix, report[side] = embedding_matrix(
                vocab.itos, counts, found, self.emb_dims[side], source.scale, self.seed,
                center=source.center,
            )  # fmt: skip
            report[side]["source"] = vars(self.vectors[side])
            np.save(tmp / f"{side}.npy", matrix)
        (tmp / "report.json").write_text(json.dumps(report, indent=1))

    def _log_report(self) -> None:
        report = json.loads((self.cache_path / "report.json").read_text())
        vectors = json.loads((self.vectors_path / "report.json").read_text())
        for split, info in report["splits"].items():
            read = info["read"]
            read_text = (
                f"{read['lines']} lines, {read['kept']} kept, skipped {read['skipped'] or 'none'}"
                if read
                else "held out of train"
            )
            log.info(
                "%s: %d pairs (%s); %d empty after tokenising; unk rate fr %.2f%% en %.2f%%%s",
                split,
                info["pairs"],
                read_text,
                info["dropped_empty_after_tokenising"],
                100 * info["src_unk_rate"],
                100 * info["tgt_unk_rate"],
                f"; {info['truncated_pairs']} truncated" if "truncated_pairs" in info else "",
            )
            if "scored_sources" in info:
                log.info(
                    "%s: BLEU scores %d distinct French sentences against all their references",
                    split,
                    info["scored_sources"],
                )
        limits = report["length_limits"]
        log.info("length limits (eos included): fr %d, en %d", limits["src"], limits["tgt"])
        log.info(
            "detokenizer: %.2f%% of sampled training targets re-tokenise to the same tokens",
            100 * report["detokenizer_round_trip"],
        )
        for side, lang in (("src", "fr"), ("tgt", "en")):
            v = vectors[side]
            spread = v.get("spread") or {}
            log.info(
                "%s vectors (%s): %d/%d words (%.1f%% of tokens), scale %.3g, mean pairwise cosine "
                "%s, effective rank %s; most frequent missing: %s",
                lang,
                v["source"]["kind"],
                v["found"],
                v["vocab"],
                100 * v["token_coverage"],
                v["scale"],
                f"{spread['mean_cosine']:.3f}" if spread else "n/a",
                f"{spread['effective_rank']:.1f}" if spread else "n/a",
                ", ".join(v["top_missing"][:10]) or "none",
            )
            if v.get("degenerate"):
                log.warning(
                    "%s vectors (%s) are degenerate: %s. They would start the %s close to blind; "
                    "set data.%s_vectors.kind=none, or for kind=train raise "
                    "data.%s_vectors.epochs (and keep data.%s_vectors.center=true)",
                    lang,
                    v["source"]["kind"],
                    v["degenerate"],
                    "encoder" if side == "src" else "decoder",
                    side,
                    side,
                    side,
                )

    # -- loading (every rank) -----------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        path = self.cache_path
        if not (path / "report.json").is_file():
            raise RuntimeError(f"no prepared data in {path}; call prepare_data() first")
        self.src_vocab = Vocab.load(path / "vocab_src.json")
        self.tgt_vocab = Vocab.load(path / "vocab_tgt.json")
        self.report = json.loads((path / "report.json").read_text())
        self.report["vectors"] = json.loads((self.vectors_path / "report.json").read_text())
        self.detokenizer = Detokenizer.from_dict(
            json.loads((path / "detokenizer.json").read_text())
        )
        for split in SPLITS:
            if (path / f"{split}_src.flat.npy").is_file():
                refs_file = path / f"{split}_references.json"
                refs = json.loads(refs_file.read_text()) if refs_file.is_file() else None
                self.datasets[split] = PairDataset(
                    Ragged.load(path / f"{split}_src"), Ragged.load(path / f"{split}_tgt"), refs
                )
        self.pretrained = {s: load_array(self.vectors_path / f"{s}.npy") for s in ("src", "tgt")}

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
