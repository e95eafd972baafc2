"""A corpus tokenised into shards on disk, so preparation holds one shard at a time, not the corpus.

``tokenise_to_shards`` reads a corpus as a stream, ``SHARD_PAIRS`` pairs at a time; each shard is
tokenised (in ``workers`` processes at once when asked, in order), its tokens numbered with ids of
first appearance across the whole corpus (``TokenIds``: the only thing that grows with the
corpus is the number of distinct words) and written as NumPy arrays: ids and lengths per side,
the English tokens' "followed by a space" flags (what the detokenizer learns from), and the raw
sentences where references or a held-out split need them. ``Part`` is a split: shards and, per
shard, which of its pairs belong to the split. ``prepare.py`` counts, splits, numbers with the
vocabularies and writes the final arrays shard by shard from these.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lit_common.cache import load_array
from lit_seq2seq.corpus import Corpus, CorpusError, Pair, ReadStats
from lit_seq2seq.tokenizer import Tokenizer

SHARD_PAIRS = 20_000  # pairs read, tokenised and written at a time
SIDES = ("src", "tgt")


class TokenIds:
    """Token strings numbered in order of first appearance (one table per language)."""

    def __init__(self) -> None:
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.itos)

    def merge(self, tokens: list[str]) -> np.ndarray:
        """The ids of ``tokens`` (a shard's own table, in its order of first appearance), new
        ones appended: a shard's local ids map to these ids by indexing."""
        ids = np.empty(len(tokens), dtype=np.int32)
        for i, token in enumerate(tokens):
            known = self.stoi.get(token)
            if known is None:
                known = self.stoi[token] = len(self.itos)
                self.itos.append(token)
            ids[i] = known
        return ids


def _number(sentences: list[list[tuple[str, bool]]], spaced: bool) -> dict[str, Any]:
    """A shard side as local ids (first appearance in the shard), lengths and (``spaced``)
    the tokens' space flags."""
    table: dict[str, int] = {}
    flat: list[int] = []
    spaces: list[bool] = []
    for sentence in sentences:
        for token, space in sentence:
            flat.append(table.setdefault(token, len(table)))
            if spaced:
                spaces.append(space)
    return {
        "tokens": list(table),
        "ids": np.asarray(flat, dtype=np.int32),
        "lengths": np.fromiter((len(s) for s in sentences), np.int32, count=len(sentences)),
        "spaces": np.asarray(spaces, dtype=np.uint8) if spaced else None,
    }


_TOKENIZERS: dict[tuple[str, bool], Tokenizer] = {}


def tokenise_chunk(pairs: list[Pair], lowercase: bool, keep_raw: bool) -> dict[str, Any]:
    """Tokenise one shard of pairs (in a worker process or in this one): both sides numbered
    with the shard's own ids, pairs with an empty side after tokenising dropped and counted."""
    out: dict[str, Any] = {}
    spaced = {}
    for side, lang, column in (("src", "fr", 0), ("tgt", "en", 1)):
        key = (lang, lowercase)
        if key not in _TOKENIZERS:
            _TOKENIZERS[key] = Tokenizer(lang, lowercase)
        spaced[side] = list(_TOKENIZERS[key].pipe_spaced(p[column] for p in pairs))
    keep = [i for i, (s, t) in enumerate(zip(spaced["src"], spaced["tgt"], strict=True)) if s and t]
    for side in SIDES:
        out[side] = _number([spaced[side][i] for i in keep], spaced=side == "tgt")
    out["dropped"] = len(pairs) - len(keep)
    out["raw"] = [list(pairs[i]) for i in keep] if keep_raw else None
    return out


@dataclass
class Shard:
    """One shard's files: ``<prefix>.<side>.npy`` (ids), ``.<side>_len.npy``, ``.spaces.npy``
    (English), ``.raw.json`` (when kept)."""

    prefix: Path
    pairs: int

    def ids(self, side: str) -> np.ndarray:
        return load_array(self.prefix.with_name(f"{self.prefix.name}.{side}.npy"))

    def lengths(self, side: str) -> np.ndarray:
        return load_array(self.prefix.with_name(f"{self.prefix.name}.{side}_len.npy"))

    def spaces(self) -> np.ndarray:
        return load_array(self.prefix.with_name(f"{self.prefix.name}.spaces.npy"))

    def raw(self) -> list[list[str]]:
        return json.loads(self.prefix.with_name(f"{self.prefix.name}.raw.json").read_text())

    def write(self, result: dict[str, Any], ids: dict[str, TokenIds]) -> None:
        for side in SIDES:
            part = result[side]
            mapping = ids[side].merge(part["tokens"])
            np.save(self.prefix.with_name(f"{self.prefix.name}.{side}.npy"), mapping[part["ids"]])
            np.save(self.prefix.with_name(f"{self.prefix.name}.{side}_len.npy"), part["lengths"])
        np.save(self.prefix.with_name(f"{self.prefix.name}.spaces.npy"), result["tgt"]["spaces"])
        if result["raw"] is not None:
            raw = json.dumps(result["raw"], ensure_ascii=False)
            self.prefix.with_name(f"{self.prefix.name}.raw.json").write_text(raw)


def split_rows(flat: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
    """A ragged (flat, lengths) pair of arrays as one list of values per row."""
    return [row.tolist() for row in np.split(flat, np.cumsum(lengths)[:-1])] if len(lengths) else []


def rows(flat: np.ndarray, lengths: np.ndarray, keep: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """The ``keep`` rows of a ragged (flat, lengths) pair of arrays, still ragged."""
    if keep is None:
        return flat, lengths
    return flat[np.repeat(keep, lengths)], lengths[keep]


@dataclass
class Part:
    """A split: shards, and per shard which pairs belong to it (None: all)."""

    shards: list[Shard]
    keep: list[np.ndarray | None] = field(default_factory=list)
    read: dict[str, Any] | None = None
    dropped_empty_tokens: int = 0

    def __post_init__(self) -> None:
        if not self.keep:
            self.keep = [None] * len(self.shards)

    def __len__(self) -> int:
        return sum(
            s.pairs if k is None else int(k.sum())
            for s, k in zip(self.shards, self.keep, strict=True)
        )

    def side(self, side: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per shard, the split's (flat ids, lengths) of ``side``."""
        for shard, keep in zip(self.shards, self.keep, strict=True):
            yield rows(shard.ids(side), shard.lengths(side), keep)

    def lengths(self, side: str) -> Iterator[np.ndarray]:
        """Per shard, the split's sentence lengths of ``side`` (eos not included)."""
        for shard, keep in zip(self.shards, self.keep, strict=True):
            lengths = shard.lengths(side)
            yield lengths if keep is None else lengths[keep]

    def spaced_tgt(self, itos: list[str], limit: int) -> Iterator[list[tuple[str, bool]]]:
        """The first ``limit`` English sentences as (token, followed by a space) lists."""
        left = limit
        for shard, keep in zip(self.shards, self.keep, strict=True):
            flat, lengths = rows(shard.ids("tgt"), shard.lengths("tgt"), keep)
            spaces, _ = rows(shard.spaces(), shard.lengths("tgt"), keep)
            n = min(left, len(lengths))
            head = (split_rows(a[: int(lengths[:n].sum())], lengths[:n]) for a in (flat, spaces))
            for ids, space in zip(*head, strict=True):
                yield [(itos[t], bool(b)) for t, b in zip(ids, space, strict=True)]
            left -= min(left, len(lengths))
            if left == 0:
                return

    def raw(self) -> list[list[str]]:
        """The split's raw (French, English) pairs, in order."""
        out: list[list[str]] = []
        for shard, keep in zip(self.shards, self.keep, strict=True):
            pairs = shard.raw()
            out += pairs if keep is None else [p for p, k in zip(pairs, keep, strict=True) if k]
        return out


def _chunks(pairs: Iterable[Pair], size: int) -> Iterator[list[Pair]]:
    chunk: list[Pair] = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Tokenising:
    """Where shards are tokenised: in this process (``workers`` <= 1), or in ``workers`` spawned
    processes started once for every corpus of a preparation (a start costs seconds: each
    imports spaCy). A context manager; ``map`` gives ``tokenise_chunk`` of each chunk in order,
    with at most two chunks a worker in flight, so reading never runs ahead of tokenising."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Tokenising:
        if self.workers > 1:
            # spawn: a forked copy of a process with torch's or W&B's threads can hang. An
            # executor, not a Pool: a worker that dies (out of memory) fails the run instead of
            # leaving it waiting.
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def map(
        self, chunks: Iterable[list[Pair]], lowercase: bool, keep_raw: bool
    ) -> Iterator[dict[str, Any]]:
        if self.pool is None:
            for chunk in chunks:
                yield tokenise_chunk(chunk, lowercase, keep_raw)
            return
        pending: deque = deque()
        try:
            for chunk in chunks:
                pending.append(self.pool.submit(tokenise_chunk, chunk, lowercase, keep_raw))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as err:
            raise CorpusError(
                f"a tokenising worker process died ({err}); lower data.n_process or free memory"
            ) from None


def tokenise_to_shards(
    split: str,
    corpus: Corpus,
    folder: Path,
    ids: dict[str, TokenIds],
    lowercase: bool,
    tokenising: Tokenising | None = None,
    keep_raw: bool = False,
    progress: Any = None,
) -> Part:
    """Read, tokenise (``tokenising``: in this process when None) and write ``corpus`` as shards
    under ``folder``; ``ids`` (one per side) number the tokens across every corpus of the
    preparation."""
    stats = ReadStats()
    shards: list[Shard] = []
    dropped = 0
    task = progress.add_task(f"tokenising {split}", total=None) if progress is not None else None
    chunks = _chunks(corpus.pairs(stats), SHARD_PAIRS)
    for result in (tokenising or Tokenising()).map(chunks, lowercase, keep_raw):
        shard = Shard(folder / f"{split}-{len(shards):05d}", len(result["src"]["lengths"]))
        shard.write(result, ids)
        shards.append(shard)
        dropped += result["dropped"]
        if progress is not None:
            progress.advance(task, shard.pairs + result["dropped"])
    part = Part(shards, read=vars(stats), dropped_empty_tokens=dropped)
    if not len(part):
        raise CorpusError(
            f"the {split} corpus is empty after reading and filtering ({stats.summary()}); "
            "make sure the file, its columns and the filter patterns are right"
        )
    return part


def percentile_of_counts(counts: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear) of the values whose histogram is ``counts``
    (``counts[v]``: how many times ``v`` occurs), without the values themselves."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile_of_counts: q={q} is not in [0, 100]")
    n = int(counts.sum())
    cumulative = np.cumsum(counts)
    virtual = (n - 1) * np.true_divide(q, 100)
    below = int(np.floor(virtual))
    above = min(below + 1, n - 1)
    gamma = virtual - below
    a, b = (float(np.searchsorted(cumulative, k, side="right")) for k in (below, above))
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
