"""Pretrained word vectors for embedding initialisation: fastText, .vec text files, spaCy, or
trained here.

The lesson initialises both embeddings from fastText's wiki vectors, scaled by 3 so they match the
N(0, 1) spread of ``nn.Embedding``'s random init, and keeps random rows for missing words. Offline,
``kind=train`` trains a small fastText skipgram model on the training corpus itself. Only the
vocabulary's rows are kept (a V x D float32 array), never the whole vector file.

Vectors can be useless while covering every word: fastText trained for a few epochs on a few
thousand sentences gives rows that nearly all point one way (mean pairwise cosine 0.999, effective
rank 2 of 300, measured on the Tatoeba questions), and scaled to std 1 every word becomes a long
copy of one direction. ``spread`` measures that (mean pairwise cosine of a sample, and the
effective rank of Roy & Vetterli 2007: exp of the entropy of the normalised singular values); the
data report logs it for every source and warns about degenerate vectors. ``center`` removes the
common mean direction before scaling (Mu & Viswanath, "All-but-the-Top", arXiv:1702.01417).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from lit_common.errors import check_choice
from lit_common.ranges import Int, Range, Real, check_ranges
from lit_common.vectors import VectorsError, read_vec

log = logging.getLogger(__name__)
KINDS = ("train", "fasttext", "vec", "spacy", "none")
SPREAD_SAMPLE = 2000  # rows used to measure a source's spread
DEGENERATE_COSINE = 0.8  # mean pairwise cosine above this: one shared direction dominates
DEGENERATE_RANK = 0.05  # effective rank below this fraction of the dimension


@dataclass
class VectorSource:
    """Where one language's vectors come from.

    Attributes:
        kind: ``train`` (fastText on the training corpus), ``fasttext`` (a ``.bin`` model), ``vec``
            (word2vec/fastText text format), ``spacy`` (an installed spaCy package's vectors), or
            ``none`` (random init only).
        path: the ``.bin``/``.vec`` file, or the spaCy package name (e.g. ``fr_core_news_md``).
        epochs: fastText training epochs for ``kind=train`` (10 gave degenerate vectors on 9k
            sentences, 50 did not).
        min_count: fastText minimum count for ``kind=train``.
        bucket: fastText subword hash buckets for ``kind=train``; memory is bucket x dim floats
            (fastText's 2M would take 2.4 GB at 300-d).
        scale: multiply found vectors by this; ``auto`` rescales them to std 1 (the lesson uses 3).
        center: subtract the mean of the found vectors before scaling.
    """

    kind: str = "train"
    path: str | None = None
    epochs: int = 50
    min_count: int = 1
    bucket: int = 100_000
    scale: float | str = "auto"
    center: bool = True

    RANGES: ClassVar[dict[str, Range]] = {
        "epochs": Int(1, 10_000),
        "min_count": Int(1),
        "bucket": Int(1, 100_000_000),
        "scale": Real(0.0, low_open=True, also=("auto",)),
    }

    def __post_init__(self) -> None:
        check_ranges(asdict(self), self.RANGES)
        check_choice("kind", self.kind, KINDS, VectorsError, "vectors ")
        if self.kind in ("fasttext", "vec", "spacy") and not self.path:
            raise VectorsError(f"vectors kind={self.kind!r} needs path= (file or spaCy package)")


def _fasttext_rows(
    model: object, words: Sequence[str], dim: int, what: str
) -> dict[str, np.ndarray]:
    if model.get_dimension() != dim:  # type: ignore[attr-defined]
        raise VectorsError(
            f"{what} has dimension {model.get_dimension()} but the embedding has {dim}"  # type: ignore[attr-defined]
        )
    return {
        w: np.asarray(model.get_word_vector(w), dtype=np.float32)  # type: ignore[attr-defined]
        for w in words
        if model.get_word_id(w) >= 0  # type: ignore[attr-defined]
    }


_M_PERTURB = -6  # glibc mallopt(): fill every new allocation with the complement of this byte
_PRELOADED_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
_zeroing_lock = threading.Lock()


@contextlib.contextmanager
def zeroed_allocations() -> Iterator[bool]:
    """Make new heap allocations start zeroed while fastText builds its matrices (glibc only).

    fastText 0.9.3 initialises its input matrix in ten blocks, one per thread, but with
    ``thread=1`` only block 0 runs (``DenseMatrix::uniform`` in src/densematrix.cc), and the matrix
    is an ``intgemm::AlignedVector`` that, unlike 0.9.2's ``std::vector``, is not zeroed. So 90% of
    the rows (most subword buckets) start as whatever the heap held: results that differ run to
    run and "Encountered NaN" stops (measured here: 10 of 20 runs at dim 64 with 1,000 buckets).
    Matrices above glibc's mmap threshold (which grows up to 32 MiB as memory is freed) get fresh
    zeroed pages, which is why the 300-d real-data runs behaved. glibc's ``M_PERTURB`` with byte
    0xFF makes every allocation start as zeros, i.e. 0.9.2's behaviour, and training becomes
    deterministic (20 of 20 identical runs, no NaN).

    Yields whether zeroing is active: not on other platforms, nor when ``LD_PRELOAD`` names
    another allocator (its ``mallopt``, if any, would not zero anything). The setting is
    process-wide, so uses are serialised by a lock; afterwards it goes back to
    ``MALLOC_PERTURB_`` (0 when unset or out of glibc's 0-255 range).
    """
    mallopt = None
    preload = os.environ.get("LD_PRELOAD", "")
    if sys.platform.startswith("linux") and not any(a in preload for a in _PRELOADED_ALLOCATORS):
        with contextlib.suppress(OSError, AttributeError):
            mallopt = ctypes.CDLL(None).mallopt
    if mallopt is None:
        yield False
        return
    with _zeroing_lock:
        if mallopt(_M_PERTURB, 0xFF) != 1:
            yield False
            return
        try:
            yield True
        finally:
            try:
                previous = int(os.environ.get("MALLOC_PERTURB_", "0"))
            except ValueError:
                previous = 0
            mallopt(_M_PERTURB, previous if 0 <= previous <= 255 else 0)


def train_fasttext(
    sentences: Iterable[Sequence[str]],
    words: Sequence[str],
    dim: int,
    epochs: int = 50,
    min_count: int = 1,
    bucket: int = 100_000,
    save_to: Path | None = None,
    attempts: int = 3,
) -> dict[str, np.ndarray]:
    """Vectors of ``words`` from a fastText skipgram model trained on ``sentences`` (one thread).

    One thread keeps training reproducible; ``zeroed_allocations`` works around fastText 0.9.3
    leaving most of its input matrix uninitialised in that mode. Training is then deterministic, so
    a NaN stop would only repeat: it is an error at once; without zeroing it is retried.
    ``save_to`` also keeps the ``.bin`` model.
    """
    import fasttext

    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "corpus.txt"
        n_sentences = 0
        with open(text, "w", encoding="utf-8") as f:  # streamed: the corpus may not fit
            for sentence in sentences:
                f.write(" ".join(sentence) + "\n")
                n_sentences += 1
        for attempt in range(1, attempts + 1):
            with zeroed_allocations() as zeroed:
                if not zeroed and attempt == 1:
                    log.warning(
                        "fastText 0.9.3 with one thread leaves most of its input matrix "
                        "uninitialised, and it cannot be zeroed here (glibc malloc needed): "
                        "vectors may differ between runs or stop with NaN (retried)"
                    )
                try:
                    model = fasttext.train_unsupervised(
                        str(text), model="skipgram", dim=dim, epoch=epochs, minCount=min_count,
                        bucket=bucket, thread=1, verbose=0,
                    )  # fmt: skip
                except RuntimeError as err:
                    if "NaN" not in str(err):
                        raise
                    if zeroed:
                        break
                    log.warning("fastText stopped with NaN (attempt %d of %d)", attempt, attempts)
                    continue
            if save_to is not None:
                model.save_model(str(save_to))
            return _fasttext_rows(model, words, dim, "the fastText model trained on the corpus")
    raise VectorsError(
        f"fastText training stopped with NaN at dim={dim} on {n_sentences} sentences; use "
        "more data, other epochs or bucket, or vectors kind=none"
    )


def lookup(
    source: VectorSource, words: Sequence[str], dim: int, sentences: Iterable[Sequence[str]]
) -> dict[str, np.ndarray]:
    """Vectors for as many of ``words`` as ``source`` has (``sentences`` feeds ``kind=train``)."""
    if source.kind == "none":
        return {}
    if source.kind == "vec":
        return read_vec(Path(str(source.path)), set(words), dim)
    if source.kind == "fasttext":
        import fasttext

        path = Path(str(source.path))
        if not path.is_file():
            raise VectorsError(
                f"fastText model {str(path)!r} does not exist; download one with "
                "`python -m lit_seq2seq.download fasttext-fr --dest DIR`"
            )
        return _fasttext_rows(fasttext.load_model(str(path)), words, dim, str(path))
    if source.kind == "spacy":
        import spacy

        try:
            vocab = spacy.load(str(source.path)).vocab
        except OSError as err:
            raise VectorsError(
                f"spaCy package {source.path!r} is not installed (pip install {source.path})"
            ) from err
        if vocab.vectors_length != dim:
            raise VectorsError(
                f"{source.path} vectors have dimension {vocab.vectors_length}, not {dim}"
            )
        return {
            w: np.asarray(vocab.get_vector(w), np.float32) for w in words if vocab.has_vector(w)
        }
    return train_fasttext(sentences, words, dim, source.epochs, source.min_count, source.bucket)


def spread(vectors: np.ndarray, seed: int = 0) -> dict[str, float]:
    """How much of the space a set of vectors uses, on a sample of ``SPREAD_SAMPLE`` rows.

    Returns:
        ``mean_cosine``: mean cosine over all pairs of distinct rows (about 0 for random vectors,
        1 when they all point one way); ``effective_rank``: exp of the entropy of the normalised
        singular values (1 to ``dim``).
    """
    rng = np.random.default_rng(seed)
    sample = vectors[rng.permutation(len(vectors))[:SPREAD_SAMPLE]].astype(np.float64)
    norms = np.linalg.norm(sample, axis=1, keepdims=True)
    unit = sample[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    n = len(unit)
    if n < 2:
        return {"mean_cosine": float("nan"), "effective_rank": float("nan")}
    summed = unit.sum(0)
    mean_cosine = (float(summed @ summed) - n) / (n * (n - 1))  # off-diagonal mean of U U^T
    singular = np.linalg.svd(sample, compute_uv=False)
    p = singular / max(float(singular.sum()), 1e-12)
    entropy = -float((p[p > 0] * np.log(p[p > 0])).sum())
    return {"mean_cosine": mean_cosine, "effective_rank": float(np.exp(entropy))}


def degenerate(measured: dict[str, float], dim: int) -> str | None:
    """Why vectors with this ``spread`` are degenerate, or None when they are not."""
    if measured["mean_cosine"] > DEGENERATE_COSINE:
        return f"mean pairwise cosine {measured['mean_cosine']:.3f} > {DEGENERATE_COSINE}"
    if measured["effective_rank"] < DEGENERATE_RANK * dim:
        return (
            f"effective rank {measured['effective_rank']:.1f} < {DEGENERATE_RANK:.0%} of the "
            f"{dim} dimensions"
        )
    return None


def embedding_matrix(
    itos: Sequence[str],
    counts: Sequence[int],
    vectors: dict[str, np.ndarray],
    dim: int,
    scale: float | str = "auto",
    seed: int = 0,
    pad_idx: int = 1,
    n_specials: int = 4,
    center: bool = False,
) -> tuple[np.ndarray, dict[str, object]]:
    """A (V, dim) init: found words' vectors (centred when ``center``) times ``scale``, N(0, 1)
    rows (zero for pad) otherwise.

    Returns:
        The matrix and a report: vocabulary and token coverage, the scale used, the spread of the
        found rows as used (and why they are degenerate, if they are), and the most frequent
        words without a vector.
    """
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((len(itos), dim)).astype(np.float32)
    matrix[pad_idx] = 0.0
    found = [i for i, w in enumerate(itos) if i >= n_specials and w in vectors]
    measured: dict[str, float] | None = None
    if found:
        stacked = np.stack([vectors[itos[i]] for i in found])
        if center:
            stacked = stacked - stacked.mean(0, keepdims=True)
        factor = 1.0 / max(float(stacked.std()), 1e-8) if scale == "auto" else float(scale)
        matrix[found] = stacked * factor
        measured = spread(stacked, seed)
    else:
        factor = 0.0
    words = range(n_specials, len(itos))
    total = sum(counts[i] for i in words) or 1
    missing = sorted((i for i in words if itos[i] not in vectors), key=lambda i: -counts[i])
    report = {
        "found": len(found),
        "vocab": len(itos) - n_specials,
        "vocab_coverage": len(found) / max(1, len(itos) - n_specials),
        "token_coverage": sum(counts[i] for i in found) / total,
        "scale": factor,
        "spread": measured,
        "degenerate": degenerate(measured, dim) if measured else None,
        "top_missing": [itos[i] for i in missing[:20]],
    }
    return matrix, report
