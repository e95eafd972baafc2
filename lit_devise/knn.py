"""Cosine nearest-neighbour search over vectors with ids, saved to and loaded from a folder.

Vectors are L2-normalised, so cosine similarity is an inner product. Backends:

- ``exact``: brute force with NumPy (the ground truth);
- ``faiss`` (default): exact ``IndexFlatIP`` below ``hnsw_threshold`` vectors, ``IndexHNSWFlat``
  with inner product above it;
- ``hnswlib``: HNSW, cosine space;
- ``nmslib``: HNSW, ``cosinesimil`` space (the lesson's choice; the registry's wheel has no SIMD).

Every backend returns cosine similarities (higher is nearer) and row indices. A saved index is a
folder: ``index.json`` (backend, parameters, ids, metadata, and the size and SHA-256 of each file),
``vectors.npy`` (the unit vectors) and the backend's own file. Loading checks ``index.json``
against its schema, the vectors' shape and values, and every file's checksum before a native
library reads it: hnswlib and nmslib trust their files and crash on crafted ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lit_common.errors import InputError, check_choice
from lit_common.ranges import Int, RangeError
from lit_common.schema import (
    SchemaError,
    check_digest,
    file_digest,
    read_json,
    require,
    require_strings,
)

BACKENDS = ("exact", "faiss", "hnswlib", "nmslib")
FORMAT = 2  # 1: no file checksums
NATIVE_FILES = {"faiss": "faiss.index", "hnswlib": "hnswlib.bin", "nmslib": "nmslib.bin"}
PARAM_RANGES = {
    "hnsw_threshold": Int(0),
    "m": Int(2, 1024),
    "ef_construction": Int(1, 1_000_000),
    "ef_search": Int(1, 1_000_000),
}


class KnnError(InputError):
    """An index that cannot be built, loaded or queried; the message says why."""


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@contextmanager
def omp_threads(faiss: Any, threads: int) -> Iterator[None]:
    """faiss's OpenMP thread count set for the block, then put back: the process has one OpenMP
    runtime, so ``faiss.omp_set_num_threads`` also sets torch's intra-op threads (a DDP rank or
    a training run that searches during validation would otherwise keep ``threads`` of them
    after the search, and processes sharing the cores would fight for them)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def exact_search(
    data: np.ndarray, queries: np.ndarray, k: int, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k inner products: (scores, indices), each (n_queries, k), best first."""
    k = min(k, len(data))
    scores_out = np.empty((len(queries), k), np.float32)
    index_out = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), chunk):
        sims = queries[start : start + chunk] @ data.T  # (chunk, n)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        index_out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
        scores_out[start : start + chunk] = np.take_along_axis(top_scores, order, axis=1)
    return scores_out, index_out


def _import(backend: str) -> Any:
    try:
        if backend == "faiss":
            import faiss

            return faiss
        if backend == "hnswlib":
            import hnswlib

            return hnswlib
        import nmslib

        return nmslib
    except ImportError:
        extra = "faiss-cpu" if backend == "faiss" else backend
        raise KnnError(f"backend={backend!r} needs `pip install {extra}`") from None


class KnnIndex:
    """A cosine k-NN index over vectors with string ids.

    Args:
        backend: one of ``BACKENDS``.
        hnsw_threshold: ``faiss`` switches from exact search to HNSW at this many vectors.
        m: HNSW graph degree (``M``).
        ef_construction: HNSW build-time candidate list size.
        ef_search: HNSW query-time candidate list size (recall vs speed).
        threads: threads for building and querying; None: all cores.

    Example::

        >>> index = KnnIndex("exact").build(np.eye(3), ["a", "b", "c"])
        >>> scores, rows = index.search(np.array([[0.9, 0.1, 0.0]]), k=2)
        >>> [index.ids[i] for i in rows[0]]
        ['a', 'b']
    """

    def __init__(
        self,
        backend: str = "faiss",
        hnsw_threshold: int = 100_000,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        threads: int | None = None,
    ) -> None:
        check_choice("backend", backend, BACKENDS, KnnError)
        self.backend = backend
        self.params = {
            "hnsw_threshold": hnsw_threshold,
            "m": m,
            "ef_construction": ef_construction,
            "ef_search": ef_search,
        }
        self.threads = threads or os.cpu_count() or 1
        self.ids: list[str] = []
        self.metadata: dict[str, Any] = {}
        self.vectors = np.zeros((0, 0), np.float32)
        self._native: Any = None

    @property
    def kind(self) -> str:
        """``exact`` or ``hnsw``: what the backend does for this many vectors."""
        if self.backend == "exact":
            return "exact"
        if self.backend == "faiss" and len(self.ids) < self.params["hnsw_threshold"]:
            return "exact"
        return "hnsw"

    def __len__(self) -> int:
        return len(self.ids)

    def build(
        self, vectors: np.ndarray, ids: Sequence[str], metadata: dict[str, Any] | None = None
    ) -> KnnIndex:
        """Index ``vectors`` (n, dim), normalised here, under ``ids`` (n strings)."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise KnnError(f"expected a non-empty (n, dim) array, got shape {vectors.shape}")
        if len(ids) != len(vectors):
            raise KnnError(f"{len(ids)} ids for {len(vectors)} vectors")
        if not np.isfinite(vectors).all():
            raise KnnError("vectors contain NaN or inf")
        self.vectors = np.ascontiguousarray(normalize(vectors))
        self.ids = [str(i) for i in ids]
        self.metadata = dict(metadata or {})
        self._native = self._build_native()
        return self

    def _build_native(self) -> Any:
        n, dim = self.vectors.shape
        p = self.params
        if self.backend == "exact":
            return None
        if self.backend == "faiss":
            faiss = _import("faiss")
            with omp_threads(faiss, self.threads):
                if self.kind == "exact":
                    native = faiss.IndexFlatIP(dim)
                else:
                    native = faiss.IndexHNSWFlat(dim, p["m"], faiss.METRIC_INNER_PRODUCT)
                    native.hnsw.efConstruction = p["ef_construction"]
                native.add(self.vectors)
            return native
        if self.backend == "hnswlib":
            hnswlib = _import("hnswlib")
            native = hnswlib.Index(space="cosine", dim=dim)
            native.init_index(max_elements=n, ef_construction=p["ef_construction"], M=p["m"])
            native.add_items(self.vectors, np.arange(n), num_threads=self.threads)
            return native
        nmslib = _import("nmslib")
        native = nmslib.init(method="hnsw", space="cosinesimil")
        native.addDataPointBatch(self.vectors)
        native.createIndex(
            {
                "M": p["m"],
                "efConstruction": p["ef_construction"],
                "post": 0,
                "indexThreadQty": self.threads,
            },
            print_progress=False,
        )
        return native

    def set_ef_search(self, ef_search: int) -> None:
        """Change the HNSW query-time candidate list size (recall vs speed)."""
        self.params["ef_search"] = ef_search

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` cosine similarities and row indices, each (n_queries, k), best first."""
        if not self.ids:
            raise KnnError("the index is empty; build() or load() it first")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if queries.shape[1] != self.vectors.shape[1]:
            raise KnnError(
                f"queries have dimension {queries.shape[1]}, the index {self.vectors.shape[1]}"
            )
        queries = np.ascontiguousarray(normalize(queries))
        k = min(k, len(self.ids))
        ef = max(self.params["ef_search"], k)
        if self.backend == "exact":
            return exact_search(self.vectors, queries, k)
        if self.backend == "faiss":
            with omp_threads(_import("faiss"), self.threads):
                if self.kind == "hnsw":
                    self._native.hnsw.efSearch = ef
                scores, rows = self._native.search(queries, k)
            return scores, rows.astype(np.int64)
        if self.backend == "hnswlib":
            self._native.set_ef(ef)
            rows, dist = self._native.knn_query(queries, k=k, num_threads=self.threads)
            return (1.0 - dist).astype(np.float32), rows.astype(np.int64)
        self._native.setQueryTimeParams({"efSearch": ef})
        found = self._native.knnQueryBatch(queries, k=k, num_threads=self.threads)
        rows = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        for i, (ids, dist) in enumerate(found):
            rows[i, : len(ids)] = ids
            scores[i, : len(ids)] = 1.0 - dist
        return scores, rows

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "vectors.npy", self.vectors)
        if self.backend == "faiss":
            _import("faiss").write_index(self._native, str(folder / "faiss.index"))
        elif self.backend == "hnswlib":
            self._native.save_index(str(folder / "hnswlib.bin"))
        elif self.backend == "nmslib":
            self._native.saveIndex(str(folder / "nmslib.bin"), save_data=False)
        names = ["vectors.npy", *([NATIVE_FILES[self.backend]] if self._native is not None else [])]
        info = {
            "format": FORMAT,
            "backend": self.backend,
            "params": self.params,
            "dim": int(self.vectors.shape[1]),
            "ids": self.ids,
            "metadata": self.metadata,
            "files": {name: file_digest(folder / name) for name in names},
        }
        (folder / "index.json").write_text(json.dumps(info))
        return folder

    @classmethod
    def load(cls, folder: str | Path, threads: int | None = None) -> KnnIndex:
        """The index saved in ``folder``, checked before use.

        Raises:
            KnnError: no ``index.json``; contents that disagree with the schema, with each
                other (ids and vectors) or with the recorded checksums; an older format.
        """
        folder = Path(folder)
        if not (folder / "index.json").is_file():
            raise KnnError(
                f"{folder} holds no index (no index.json); build one with lit_devise.index"
            )
        try:
            info = _checked_info(folder)
        except (SchemaError, RangeError) as err:
            raise KnnError(f"{folder} is not a usable index: {err}") from None
        index = cls(info["backend"], threads=threads, **info["params"])
        index.ids, index.metadata = info["ids"], info["metadata"]
        index.vectors = _checked_vectors(folder / "vectors.npy", len(index.ids), info["dim"])
        dim = index.vectors.shape[1]
        if index.backend == "faiss":
            index._native = _import("faiss").read_index(str(folder / "faiss.index"))
        elif index.backend == "hnswlib":
            native = _import("hnswlib").Index(space="cosine", dim=dim)
            native.load_index(str(folder / "hnswlib.bin"), max_elements=len(index.ids))
            index._native = native
        elif index.backend == "nmslib":
            native = _import("nmslib").init(method="hnsw", space="cosinesimil")
            native.addDataPointBatch(index.vectors)
            native.loadIndex(str(folder / "nmslib.bin"), load_data=False)
            index._native = native
        return index


def _checked_info(folder: Path) -> dict[str, Any]:
    """``index.json`` of ``folder`` checked against the schema, and its files' checksums."""
    info = read_json(folder / "index.json", "index file")
    what = f"{folder / 'index.json'}"
    require(info, {"format": int}, what)
    if info["format"] != FORMAT:
        raise SchemaError(
            f"index format {info['format']} (this version reads {FORMAT}, with file checksums); "
            "rebuild the index with lit_devise.index"
        )
    types = {"backend": str, "params": dict, "dim": int, "ids": list, "metadata": dict}
    require(info, {**types, "files": dict}, what)
    check_choice("backend", info["backend"], BACKENDS, SchemaError, f"{what}: ")
    if set(info["params"]) != set(PARAM_RANGES):
        raise SchemaError(f"{what}: params should be {sorted(PARAM_RANGES)}")
    for key, valid in PARAM_RANGES.items():
        valid.check(f"params.{key}", info["params"][key])
    Int(1, 65_536).check("dim", info["dim"])
    ids = require_strings(info["ids"], f"{what}: ids")
    if not ids:
        raise SchemaError(f"{what}: no ids")
    names = info["metadata"].get("names")
    if names is not None and len(require_strings(names, f"{what}: metadata.names")) != len(ids):
        raise SchemaError(f"{what}: {len(names)} names for {len(ids)} ids")
    check_digest(folder / "vectors.npy", info["files"].get("vectors.npy"), what)
    if info["backend"] != "exact":
        native = NATIVE_FILES[info["backend"]]
        check_digest(folder / native, info["files"].get(native), what)
    return info


def _checked_vectors(path: Path, n: int, dim: int) -> np.ndarray:
    """``vectors.npy``: float, (n, dim), finite; never unpickled."""
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise KnnError(f"{path} cannot be read as a NumPy array ({err})") from None
    if vectors.dtype not in (np.float32, np.float64) or vectors.shape != (n, dim):
        raise KnnError(
            f"{path}: expected float vectors of shape ({n}, {dim}) for the {n} ids, got "
            f"{vectors.dtype} {vectors.shape}; the index is damaged, rebuild it"
        )
    if not np.isfinite(vectors).all():
        raise KnnError(f"{path}: the vectors contain NaN or inf; rebuild the index")
    return np.ascontiguousarray(vectors, dtype=np.float32)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true top-k rows (``truth``: (q, k)) that ``found`` (q, k) contains."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
