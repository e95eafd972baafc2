"""Nearest-neighbour backends against brute force: queries/second and recall@10, in one run.

Indexes ``--n`` unit vectors of ``--dim`` dimensions with every installed backend, queries
``--queries`` other vectors from the same distribution, and compares each top-10 with exact brute
force. ``--data clustered`` (default) draws them around ``--clusters`` random centres at cosine
about 0.8, like DeViSE image embeddings around their class vectors; ``--data gaussian`` draws
isotropic Gaussian vectors, with no structure: the worst case for graph indices. HNSW backends
are measured at matched recall: ``ef_search`` rises through ``--ef`` until recall@10 reaches
``--target-recall``, and the first setting that does is reported (else the highest). ``faiss`` is
the project's default for this size (exact inner product below ``hnsw_threshold``);
``faiss_hnsw`` forces HNSW. All backends use the same threads. The last line is one JSON object:
``{"<backend>": {"qps": q, "recall_at_10": r, ...}, ...}``.

    python bench/knn.py [--n 50000] [--dim 300] [--queries 1000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

import numpy as np

from lit_devise.knn import KnnIndex, exact_search, normalize, recall_at_k


def timed_search(
    index: KnnIndex, queries: np.ndarray, k: int, repeats: int = 3
) -> tuple[float, np.ndarray]:
    best = float("inf")
    rows = np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        _, rows = index.search(queries, k)
        best = min(best, time.perf_counter() - start)
    return len(queries) / best, rows


def sample(
    rng: np.random.Generator, n: int, dim: int, data: str, clusters: int, spread: float
) -> np.ndarray:
    """(n, dim) unit vectors: isotropic, or around random centres (cosine ~ 1/sqrt(1+spread^2))."""
    if data == "gaussian":
        return normalize(rng.standard_normal((n, dim)))
    centres = normalize(rng.standard_normal((clusters, dim)))
    noise = normalize(rng.standard_normal((n, dim))) * spread
    return normalize(centres[rng.integers(0, clusters, n)] + noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--data", choices=["clustered", "gaussian"], default="clustered")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=0.75, help="noise / centre length")
    parser.add_argument("--m", type=int, default=32, help="HNSW graph degree")
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    points = sample(rng, args.n + args.queries, args.dim, args.data, args.clusters, args.spread)
    data, queries = points[: args.n], points[args.n :]
    ids = [str(i) for i in range(args.n)]
    _, truth = exact_search(data, queries, args.k)

    backends = [
        ("exact", "exact", {}),
        ("faiss", "faiss", {}),
        ("faiss_hnsw", "faiss", {"hnsw_threshold": 0}),
    ]
    backends += [(b, b, {}) for b in ("hnswlib", "nmslib") if importlib.util.find_spec(b)]
    results: dict[str, dict[str, object]] = {}
    for name, backend, extra in backends:
        index = KnnIndex(
            backend, m=args.m, ef_construction=args.ef_construction, threads=args.threads, **extra
        )
        start = time.perf_counter()
        index.build(data, ids)
        build_s = time.perf_counter() - start
        sweep = []
        for ef in args.ef if index.kind == "hnsw" else [None]:
            if ef is not None:
                index.set_ef_search(ef)
            qps, rows = timed_search(index, queries, args.k)
            sweep.append(
                {
                    "ef_search": ef,
                    "qps": round(qps, 1),
                    "recall_at_10": round(recall_at_k(rows, truth), 4),
                }
            )
            if sweep[-1]["recall_at_10"] >= args.target_recall:
                break
        chosen = next((s for s in sweep if s["recall_at_10"] >= args.target_recall), sweep[-1])
        results[name] = {**chosen, "kind": index.kind, "build_s": round(build_s, 2), "sweep": sweep}
        print(
            f"{name:11s} {index.kind:5s} build {build_s:6.1f}s  qps {chosen['qps']:9.1f}  "
            f"recall@10 {chosen['recall_at_10']:.4f}  ef {chosen['ef_search']}",
            flush=True,
        )
    base = results["exact"]["qps"]
    for value in results.values():
        value["speedup_vs_exact"] = round(float(value["qps"]) / float(base), 2)  # type: ignore[arg-type]
    if "nmslib" in results:
        for value in results.values():
            value["speedup_vs_nmslib"] = round(
                float(value["qps"]) / float(results["nmslib"]["qps"]),
                2,  # type: ignore[arg-type]
            )
    setup = {
        "data": args.data,
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "threads": args.threads,
        "m": args.m,
        "ef_construction": args.ef_construction,
        "target_recall": args.target_recall,
    }
    print(f"setup: {json.dumps(setup)}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
