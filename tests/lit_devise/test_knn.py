"""lit_devise/knn.py: exact search equals brute force, HNSW recall, save/load, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lit_common.schema import file_digest
from lit_devise.knn import NATIVE_FILES, KnnError, KnnIndex, exact_search, normalize, recall_at_k

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


def _saved(tmp_path: Path, backend: str = "exact") -> Path:
    rng = np.random.default_rng(0)
    points = rng.standard_normal((50, 8)).astype(np.float32)
    return KnnIndex(backend).build(points, [f"p{i}" for i in range(50)]).save(tmp_path / "idx")


def _edit(folder: Path, change: Any) -> None:
    info = json.loads((folder / "index.json").read_text())
    change(info)
    (folder / "index.json").write_text(json.dumps(info))


TAMPERED_JSON = [
    (lambda i: i.pop("ids"), "'ids' is missing"),
    (lambda i: i.update(ids="p0"), "'ids' should be list"),
    (lambda i: i.update(ids=[1, 2]), "ids: expected a list of strings"),
    (lambda i: i.update(ids=i["ids"][:-1]), "shape (49, 8) for the 49 ids"),
    (lambda i: i.update(dim=0), "dim=0 is out of range"),
    (lambda i: i.update(dim=9), "shape (50, 9)"),
    (lambda i: i.update(backend="annoy"), "backend='annoy' unknown"),
    (lambda i: i.update(format=1), "index format 1"),
    (lambda i: i.update(format="2"), "'format' should be int"),
    (lambda i: i["params"].update(m=-4), "params.m=-4 is out of range"),
    (lambda i: i["params"].update(extra=1), "params should be"),
    (lambda i: i.update(metadata={"names": ["a"]}), "1 names for 50 ids"),
    (lambda i: i.pop("files"), "'files' is missing"),
    (lambda i: i["files"].pop("vectors.npy"), "no size and checksum recorded for vectors.npy"),
]


@pytest.mark.parametrize(("change", "message"), TAMPERED_JSON)
def test_a_tampered_index_json_is_refused_in_one_line(
    tmp_path: Path, change: Any, message: str
) -> None:
    folder = _saved(tmp_path)
    _edit(folder, change)
    with pytest.raises(KnnError) as err:
        KnnIndex.load(folder)
    assert message in str(err.value) and "\n" not in str(err.value), err.value


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b"\xff\xfe", b"null"])
def test_an_index_json_that_is_not_an_object_is_refused(tmp_path: Path, content: bytes) -> None:
    folder = _saved(tmp_path)
    (folder / "index.json").write_bytes(content)
    with pytest.raises(KnnError, match="is not a usable index"):
        KnnIndex.load(folder)


@pytest.mark.parametrize("backend", [b for b, _ in HNSW if b != "faiss"] + ["faiss"])
def test_a_crafted_native_file_never_reaches_the_native_library(
    tmp_path: Path, backend: str
) -> None:
    """hnswlib and nmslib trust their files (a crafted one segfaults the process): the
    checksum in index.json is checked first, so a changed file is refused in one line."""
    folder = _saved(tmp_path, backend)
    native = folder / NATIVE_FILES[backend]
    size = native.stat().st_size
    native.write_bytes(b"\xff" * 64 + native.read_bytes()[64:])  # same size, crafted header
    assert native.stat().st_size == size
    with pytest.raises(KnnError, match="does not match the checksum"):
        KnnIndex.load(folder)
    native.write_bytes(b"\x00" * 10)
    with pytest.raises(KnnError, match="does not match the checksum"):
        KnnIndex.load(folder)
    native.unlink()
    with pytest.raises(KnnError, match="missing or not a regular file"):
        KnnIndex.load(folder)


def test_vectors_that_are_pickles_nan_or_another_shape_are_refused(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    vectors = folder / "vectors.npy"
    good = np.load(vectors)
    for bad, message in [
        (np.array([{"a": 1}], dtype=object), "cannot be read as a NumPy array"),
        (np.full_like(good, np.nan), "NaN or inf"),
        (good[:, :4].copy(), "expected float vectors of shape (50, 8)"),
        (good.astype(np.int64), "expected float vectors"),
    ]:
        np.save(vectors, bad, allow_pickle=True)
        _edit(folder, lambda i: i["files"].update({"vectors.npy": file_digest(vectors)}))
        with pytest.raises(KnnError) as err:
            KnnIndex.load(folder)
        assert message in str(err.value), err.value


def test_faiss_threads_do_not_leak_into_torch(data: tuple) -> None:
    """One OpenMP runtime serves faiss and torch: the index's thread count holds only while it
    builds and searches, so a training process keeps its own intra-op threads afterwards."""
    import torch

    points, queries = data
    before = torch.get_num_threads()
    other = 3 if before != 3 else 2
    for kind in ({"hnsw_threshold": 10**6}, {"hnsw_threshold": 1}):  # flat and HNSW
        index = KnnIndex("faiss", threads=other, **kind).build(points, list(map(str, range(2003))))
        assert torch.get_num_threads() == before
        index.search(queries, k=5)
        assert torch.get_num_threads() == before
