"""Translation data preparation: corpus -> spaCy tokens -> split -> vocabularies -> truncated ids
-> word vectors -> report, cached; a plain object, run and tested without a Trainer.

``Preparation.run`` reads and tokenises every corpus, holds out a validation split by English
sentence when none is given, builds both vocabularies on the training split, truncates training
pairs at length percentiles, numericalises, learns the detokenizer, looks up or trains word vectors,
and writes all of it to ``cache_root/<hash>/`` (vectors in ``vectors-<hash>/`` inside) as NumPy and
JSON; each hash covers the inputs and every setting that changes the result, so an unchanged
configuration reuses the cache. What was dropped, truncated or unknown is counted in
``report.json`` and logged. ``Preparation.load`` reads it back (``Prepared``).

Validation and test pairs keep their raw English sentences: BLEU scores detokenised translations
against them (never against vocabulary ids, where an unknown word would match ``_unk_``), and a
French sentence that occurs several times in a split is one segment with all its references.
``TranslationDataModule`` runs this in ``prepare_data`` (rank 0) and loads it in ``setup``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import spacy
from rich.progress import Progress

from lit_common.cache import content_hash, file_identity, load_array, staged
from lit_seq2seq.corpus import Corpus, CorpusError, ReadStats
from lit_seq2seq.dataset import PairDataset, Ragged, References
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.tokenizer import Tokenizer
from lit_seq2seq.vocab import SPECIALS, Vocab
from lit_seq2seq.wordvecs import VectorsError, VectorSource, embedding_matrix, lookup

log = logging.getLogger(__name__)
CACHE_FORMAT = 3  # 3: every line ending, BOM and invisible characters handled (lit_common/text)
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
            if len(vocab) == len(SPECIALS):  # the model could only ever say _unk_
                language = "French" if side == "src" else "English"
                top = max(token_counts.values(), default=0)
                raise CorpusError(
                    f"data.min_freq={self.min_freq} leaves the {language} vocabulary with only "
                    f"the 4 specials (its most frequent word occurs {top} times in "
                    f"{len(data['train'][side])} training sentences); lower data.min_freq"
                )
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
