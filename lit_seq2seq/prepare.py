"""Translation data preparation: corpus -> spaCy tokens -> split -> vocabularies -> truncated ids
-> word vectors -> report, cached; a plain object, run and tested without a Trainer.

``Preparation.run`` reads and tokenises every corpus, holds out a validation split by English
sentence when none is given, builds both vocabularies on the training split, truncates training
pairs at length percentiles, numericalises, learns the detokenizer, looks up or trains word vectors,
and writes all of it to ``cache_root/<hash>/`` (vectors in ``vectors-<hash>/`` inside) as NumPy and
JSON; each hash covers the inputs and every setting that changes the result, so an unchanged
configuration reuses the cache. What was dropped, truncated or unknown is counted in
``report.json`` and logged. ``Preparation.load`` reads it back (``Prepared``).

A corpus larger than memory prepares in bounded memory: it is read as a stream and tokenised in
shards (``token_shards.py``; ``n_process`` processes tokenise shards at once), counted, split and
numbered one shard at a time, and the id arrays are written a shard at a time (``RaggedWriter``)
and memory-mapped when training reads them. What grows with the corpus is the distinct words,
and, only for a validation split held out of the training corpus, its distinct English sentences.
The detokenizer learns from the first ``DETOKENIZER_SAMPLE`` training targets.

Validation and test pairs keep their raw English sentences: BLEU scores detokenised translations
against them (never against vocabulary ids, where an unknown word would match ``_unk_``), and a
French sentence that occurs several times in a split is one segment with all its references.
``TranslationDataModule`` runs this in ``prepare_data`` (local rank 0 of each node) and loads it
in ``setup``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import spacy
from rich.progress import Progress

from lit_common.cache import content_hash, file_identity, load_array, staged
from lit_seq2seq.corpus import Corpus, CorpusError
from lit_seq2seq.dataset import PairDataset, Ragged, RaggedWriter, References
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.token_shards import (
    SIDES,
    Part,
    TokenIds,
    Tokenising,
    percentile_of_counts,
    split_rows,
    tokenise_to_shards,
)
from lit_seq2seq.tokenizer import Tokenizer
from lit_seq2seq.vocab import SPECIALS, Vocab
from lit_seq2seq.wordvecs import VectorsError, VectorSource, embedding_matrix, lookup

log = logging.getLogger(__name__)
# 3: every line ending, BOM and invisible characters handled (lit_common/text); 4: the
# detokenizer learns from the first DETOKENIZER_SAMPLE training targets (corpora up to that size
# prepare exactly as under 3)
CACHE_FORMAT = 4
SPLITS = ("train", "valid", "test")
ROUND_TRIP_SAMPLE = 2000  # training references re-tokenised to check the detokenizer
DETOKENIZER_SAMPLE = 200_000  # the first training targets the detokenizer learns from


def _add_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of two histograms of different lengths."""
    if len(a) < len(b):
        a, b = b, a
    out = a.copy()
    out[: len(b)] += b
    return out


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


@dataclass
class Prepared:
    """A prepared corpus as ``Preparation.load`` reads it."""

    src_vocab: Vocab
    tgt_vocab: Vocab
    report: dict[str, Any]
    detokenizer: Detokenizer
    datasets: dict[str, PairDataset]
    pretrained: dict[str, np.ndarray]


@dataclass
class Preparation:
    """The settings preparation depends on (see ``TranslationDataModule`` for each).

    ``corpora`` maps ``train`` / ``valid`` / ``test`` to a corpus or None; ``vectors`` and
    ``emb_dims`` map ``src`` / ``tgt`` to a vector source and the embedding size it must fill.
    """

    corpora: dict[str, Corpus | None]
    cache_root: Path
    vectors: dict[str, VectorSource] = field(
        default_factory=lambda: {"src": VectorSource(), "tgt": VectorSource()}
    )
    emb_dims: dict[str, int] = field(default_factory=lambda: {"src": 300, "tgt": 300})
    valid_fraction: float = 0.1
    split_seed: int = 42
    lowercase: bool = True
    n_process: int = 1
    max_vocab: int = 40_000
    min_freq: int = 1
    percentiles: dict[str, float] = field(default_factory=lambda: {"src": 100.0, "tgt": 100.0})
    seed: int = 0

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
        """Settings of both sides, and for a vector file its content (``file_identity``): a
        file replaced in place is new input. Sources without a file keep their old keys."""
        key = {}
        for side in ("src", "tgt"):
            source = self.vectors[side]
            key[side] = [vars(source), self.emb_dims[side]]
            if source.kind in ("vec", "fasttext") and source.path and Path(source.path).is_file():
                key[side].append(file_identity(source.path, self.cache_root / "file_hashes.json"))
        return content_hash(key)

    @property
    def cache_path(self) -> Path:
        return self.cache_root / self._data_key()

    @property
    def vectors_path(self) -> Path:
        return self.cache_path / f"vectors-{self._vectors_key()}"

    # -- preparation --------------------------------------------------------------------------
    def run(self) -> None:
        """Write what is missing: the token cache, then the vectors; log the report."""
        if not (self.cache_path / "report.json").is_file():
            self._prepare_tokens()
        if not (self.vectors_path / "report.json").is_file():
            self._prepare_vectors()
        self.log_report()

    def _split_valid(self, train: Part, itos: list[str]) -> tuple[Part, Part]:
        """Hold out ``valid_fraction`` of the distinct English sentences, with all their pairs.

        The only step whose memory grows with the corpus: it keeps each distinct English
        sentence once. Give a corpus that does not fit a validation corpus of its own
        (``data.valid``)."""

        def english(flat: np.ndarray, lengths: np.ndarray) -> Iterator[str]:
            for row in split_rows(flat, lengths):
                yield " ".join(itos[t] for t in row)

        distinct = sorted(
            {e for flat, lengths in train.side("tgt") for e in english(flat, lengths)}
        )
        rng = np.random.default_rng(self.split_seed)
        n_valid = max(1, round(len(distinct) * self.valid_fraction))
        held = {distinct[i] for i in rng.permutation(len(distinct))[:n_valid]}
        del distinct
        masks = [
            np.fromiter((e in held for e in english(flat, lengths)), bool, count=len(lengths))
            for flat, lengths in train.side("tgt")
        ]
        kept = Part(train.shards, [~m for m in masks], train.read, train.dropped_empty_tokens)
        if not len(kept):
            raise CorpusError("valid_fraction leaves no training pairs; lower it or add data")
        return kept, Part(train.shards, masks)

    def _prepare_tokens(self) -> None:
        start = time.perf_counter()
        with staged(self.cache_path, done="report.json") as tmp:
            self._write_tokens(tmp)
        log.info("prepared %s in %.1f s", self.cache_path, time.perf_counter() - start)

    def _write_tokens(self, tmp: Path) -> None:
        """Tokenise into shards (``token_shards.py``), then count, split, build vocabularies and
        write the id arrays one shard at a time: memory does not grow with the corpus (but for
        a held-out split, ``_split_valid``)."""
        report: dict[str, Any] = {"splits": {}}
        work = tmp / "shards"
        work.mkdir()
        ids = {side: TokenIds() for side in SIDES}
        split_off = self.corpora.get("valid") is None
        with Progress(transient=True) as progress, Tokenising(self.n_process) as tokenising:
            data = {
                split: tokenise_to_shards(
                    split,
                    corpus,
                    work,
                    ids,
                    self.lowercase,
                    tokenising,
                    keep_raw=split != "train" or split_off,
                    progress=progress,
                )
                for split, corpus in self.corpora.items()
                if corpus is not None
            }
        if "valid" not in data:
            data["train"], data["valid"] = self._split_valid(data["train"], ids["tgt"].itos)
            report["valid_split"] = (
                f"{self.valid_fraction:.0%} of English sentences, seed {self.split_seed}"
            )
        train = data["train"]
        detokenizer = Detokenizer.learn(train.spaced_tgt(ids["tgt"].itos, DETOKENIZER_SAMPLE))
        (tmp / "detokenizer.json").write_text(json.dumps(detokenizer.to_dict()))
        report["detokenizer_round_trip"] = self._round_trip(detokenizer, train, ids["tgt"].itos)
        vocabs, limits, lookups = {}, {}, {}
        for side in SIDES:
            vocab, counts, histogram = self._vocab(train, side, ids[side].itos)
            vocabs[side] = vocab
            vocab.save(tmp / f"vocab_{side}.json")
            (tmp / f"counts_{side}.json").write_text(json.dumps(counts))
            limits[side] = max(2, int(percentile_of_counts(histogram, self.percentiles[side])))
            # provisional id -> vocabulary id (unknown words -> unk)
            lookups[side] = np.fromiter(
                (vocab.stoi.get(t, vocab.unk_idx) for t in ids[side].itos),
                np.int32,
                count=len(ids[side]),
            )
        for split, part in data.items():
            report["splits"][split] = self._write_split(tmp, split, part, vocabs, limits, lookups)
        report["length_limits"] = {**limits, "percentiles": self.percentiles}
        report["vocab_sizes"] = {k: len(v) for k, v in vocabs.items()}
        shutil.rmtree(work)
        (tmp / "report.json").write_text(json.dumps(report, indent=1))

    def _vocab(
        self, train: Part, side: str, itos: list[str]
    ) -> tuple[Vocab, list[int], np.ndarray]:
        """The vocabulary of ``side`` from the training counts (ties in order of first
        appearance in training, as ``Counter`` over the sentences would give), the count of
        each vocabulary entry, and the histogram of training lengths (eos included)."""
        counts = np.zeros(len(itos), dtype=np.int64)
        first = np.full(len(itos), np.iinfo(np.int64).max, dtype=np.int64)
        histogram = np.zeros(2, dtype=np.int64)
        position = 0
        for flat, lengths in train.side(side):
            counts += np.bincount(flat, minlength=len(itos))
            seen, where = np.unique(flat, return_index=True)
            np.minimum.at(first, seen, where + position)
            position += len(flat)
            histogram = _add_counts(histogram, np.bincount(lengths + 1))
        order = np.argsort(first, kind="stable")
        token_counts = Counter({itos[i]: int(counts[i]) for i in order.tolist() if counts[i]})
        vocab = Vocab.from_counts(token_counts, self.max_vocab, self.min_freq)
        if len(vocab) == len(SPECIALS):  # the model could only ever say _unk_
            language = "French" if side == "src" else "English"
            top = max(token_counts.values(), default=0)
            raise CorpusError(
                f"data.min_freq={self.min_freq} leaves the {language} vocabulary with only "
                f"the 4 specials (its most frequent word occurs {top} times in {len(train)} "
                f"training sentences); lower data.min_freq"
            )
        entry_counts = [0] * len(SPECIALS) + [token_counts[t] for t in vocab.itos[len(SPECIALS) :]]
        return vocab, entry_counts, histogram

    def _write_split(
        self,
        tmp: Path,
        split: str,
        part: Part,
        vocabs: dict[str, Vocab],
        limits: dict[str, int],
        lookups: dict[str, np.ndarray],
    ) -> dict[str, Any]:
        """Number ``part`` with the vocabularies (training pairs cut at the length limits, eos
        appended), write its arrays shard by shard (``RaggedWriter``), and return its report."""
        train = split == "train"
        info: dict[str, Any] = {
            "pairs": len(part),
            "read": part.read,
            "dropped_empty_after_tokenising": part.dropped_empty_tokens,
        }
        for side in SIDES:
            limit, eos, unk = limits[side], vocabs[side].eos_idx, vocabs[side].unk_idx
            cut = limit - 1 if train else None  # tokens kept before eos

            def kept(lengths: np.ndarray, cut: int | None = cut) -> np.ndarray:
                return np.minimum(lengths, cut) if cut else lengths

            n_values = sum(int(kept(n).sum()) + len(n) for n in part.lengths(side))
            n_tokens, n_unk, n_long = 0, 0, 0
            with RaggedWriter(tmp / f"{split}_{side}", len(part), n_values) as writer:
                for flat, lengths in part.side(side):
                    mapped = lookups[side][flat]
                    n_tokens += len(flat)
                    n_unk += int((mapped == unk).sum())
                    n_long += int((lengths + 1 > limit).sum())
                    keep = kept(lengths)
                    if cut:  # the first `cut` tokens of each sentence
                        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
                        mapped = mapped[np.arange(len(flat)) - starts < np.repeat(keep, lengths)]
                    writer.add(np.insert(mapped, np.cumsum(keep), eos), keep + 1)
            info[f"{side}_unk_rate"] = n_unk / max(1, n_tokens)
            if not train:
                info[f"{side}_longer_than_train_limit"] = n_long
        if train:
            info["truncated_pairs"] = sum(
                int(((src + 1 > limits["src"]) | (tgt + 1 > limits["tgt"])).sum())
                for src, tgt in zip(part.lengths("src"), part.lengths("tgt"), strict=True)
            )
        else:
            raw = part.raw()
            refs = references_by_source([p[0] for p in raw], [p[1] for p in raw])
            (tmp / f"{split}_references.json").write_text(json.dumps(refs, ensure_ascii=False))
            info["scored_sources"] = sum(r is not None for r in refs)
        return info

    def _round_trip(self, detokenizer: Detokenizer, train: Part, itos: list[str]) -> float:
        """Share of (a sample of) training targets that re-tokenise to the same tokens."""
        n = len(train)
        picked = np.sort(
            np.random.default_rng(0).choice(n, size=min(n, ROUND_TRIP_SAMPLE), replace=False)
        )
        sentences: list[list[str]] = []
        offset = 0
        for flat, lengths in train.side("tgt"):
            starts = np.cumsum(lengths) - lengths
            for i in (
                picked[(picked >= offset) & (picked < offset + len(lengths))] - offset
            ).tolist():
                sentences.append(
                    [itos[t] for t in flat[starts[i] : starts[i] + lengths[i]].tolist()]
                )
            offset += len(lengths)
        tokenizer = Tokenizer("en", self.lowercase)
        texts = [detokenizer(s) for s in sentences]
        same = sum(tokens == s for s, tokens in zip(sentences, tokenizer.pipe(texts), strict=True))
        return same / max(1, len(sentences))

    def _prepare_vectors(self) -> None:
        with staged(self.vectors_path, done="report.json") as tmp:
            self._write_vectors(tmp)

    def _write_vectors(self, tmp: Path) -> None:
        report = {}
        for side in ("src", "tgt"):
            vocab = Vocab.load(self.cache_path / f"vocab_{side}.json")
            counts = json.loads((self.cache_path / f"counts_{side}.json").read_text())
            sentences: Iterable[list[str]] = ()
            if self.vectors[side].kind == "train":  # streamed to fastText's input file
                train = Ragged.load(self.cache_path / f"train_{side}")
                sentences = (vocab.decode(train[i]) for i in range(len(train)))
            found = lookup(self.vectors[side], vocab.itos, self.emb_dims[side], sentences)
            if not found and self.vectors[side].kind in ("fasttext", "vec", "spacy"):
                raise VectorsError(
                    f"none of the {len(vocab) - len(SPECIALS)} {side} words has a vector in "
                    f"{self.vectors[side].path}; make sure the vectors are for the "
                    f"{'French' if side == 'src' else 'English'} side (or use kind=train/none)"
                )
            source = self.vectors[side]
            matrix, report[side] = embedding_matrix(
                vocab.itos,
                counts,
                found,
                self.emb_dims[side],
                source.scale,
                self.seed,
                center=source.center,
            )
            report[side]["source"] = vars(self.vectors[side])
            np.save(tmp / f"{side}.npy", matrix)
        (tmp / "report.json").write_text(json.dumps(report, indent=1))

    def log_report(self) -> None:
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
            "detokenizer: %.2f%% of a random sample of up to %d training targets re-tokenise to "
            "the same tokens",
            100 * report["detokenizer_round_trip"],
            ROUND_TRIP_SAMPLE,
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

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> Prepared:
        """What ``run`` wrote, memory-mapped where large."""
        path = self.cache_path
        if not (path / "report.json").is_file():
            raise RuntimeError(f"no prepared data in {path}; call prepare_data() first")
        report = json.loads((path / "report.json").read_text())
        report["vectors"] = json.loads((self.vectors_path / "report.json").read_text())
        datasets = {}
        for split in SPLITS:
            if (path / f"{split}_src.flat.npy").is_file():
                refs_file = path / f"{split}_references.json"
                refs = json.loads(refs_file.read_text()) if refs_file.is_file() else None
                datasets[split] = PairDataset(
                    Ragged.load(path / f"{split}_src"), Ragged.load(path / f"{split}_tgt"), refs
                )
        return Prepared(
            src_vocab=Vocab.load(path / "vocab_src.json"),
            tgt_vocab=Vocab.load(path / "vocab_tgt.json"),
            report=report,
            detokenizer=Detokenizer.from_dict(json.loads((path / "detokenizer.json").read_text())),
            datasets=datasets,
            pretrained={s: load_array(self.vectors_path / f"{s}.npy") for s in ("src", "tgt")},
        )
