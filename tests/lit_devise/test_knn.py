"""lit_devise/knn.py: exact search equals brute force, HNSW recall, save/load, errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lit_devise.knn import KnnError, KnnIndex, exact_search, normalize, recall_at_k

HNSW = [
    ("faiss", {"hnsw_threshold": 0}),
    *[(b, {}) for b in ("hnswlib", "nmslib") if importlib.util.find_spec(b)],
]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal((2003, 24)).astype(np.float32), rng.standard_normal((101, 24))


def brute_force(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = normalize(queries) @ normalize(data).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


@pytest.mark.parametrize(("backend", "extra"), [("exact", {}), ("faiss", {})])
def test_exact_backends_equal_brute_force(backend: str, extra: dict, data: tuple) -> None:
    points, queries = data
    index = KnnIndex(backend, **extra).build(points, [f"p{i}" for i in range(len(points))])
    assert index.kind == "exact"
    scores, rows = index.search(queries, k=7)
    want_scores, want_rows = brute_force(points, queries, 7)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("backend", "extra"), HNSW)
def test_hnsw_recall_on_random_data(backend: str, extra: dict, data: tuple) -> None:
    points, queries = data
    index = KnnIndex(backend, ef_search=128, **extra).build(points, list(map(str, range(2003))))
    assert index.kind == "hnsw"
    scores, rows = index.search(queries, k=10)
    want_scores, truth = brute_force(points, queries, 10)
    assert recall_at_k(rows, truth) >= 0.95
    np.testing.assert_allclose(scores[:, 0], want_scores[:, 0], atol=1e-4)  # cosine, not distance


@pytest.mark.parametrize(("backend", "extra"), [("exact", {}), ("faiss", {}), *HNSW])
def test_save_and_load_round_trip(backend: str, extra: dict, data: tuple, tmp_path: Path) -> None:
    points, queries = data
    ids = [f"img/{i}.jpg" for i in range(len(points))]
    index = KnnIndex(backend, **extra).build(points, ids, {"kind": "images"})
    loaded = KnnIndex.load(index.save(tmp_path / "index"))
    assert loaded.ids == ids and loaded.metadata == {"kind": "images"} and loaded.kind == index.kind
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], index.search(queries, 5)[1])


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(KnnError, match="backend='annoy' unknown"):
        KnnIndex("annoy")
    index = KnnIndex("exact")
    with pytest.raises(KnnError, match="empty"):
        index.search(np.ones(3))
    with pytest.raises(KnnError, match="2 ids for 3 vectors"):
        index.build(np.ones((3, 2)), ["a", "b"])
    with pytest.raises(KnnError, match="NaN"):
        index.build(np.array([[np.nan, 1.0]]), ["a"])
    index.build(np.eye(3), ["a", "b", "c"])
    with pytest.raises(KnnError, match="dimension 4, the index 3"):
        index.search(np.ones(4))
    assert index.search(np.ones(3), k=50)[1].shape == (1, 3)  # k clipped to the index size
    with pytest.raises(KnnError, match=r"no index\.json"):
        KnnIndex.load(tmp_path)


def test_exact_search_chunks_agree(data: tuple) -> None:
    points, queries = data
    p, q = normalize(points), normalize(queries)
    np.testing.assert_array_equal(exact_search(p, q, 5, chunk=7)[1], exact_search(p, q, 5)[1])
