"""Precompute: one pass of the frozen backbone over every image, pooled activations to disk.

With a frozen backbone the head sees the same activations every epoch, so the lesson computes
them once (fast.ai's ``precompute=True``) and trains the head on them many times faster. The cache
is ``<cache_dir>/features-<key>/`` with ``features.npy`` (a NumPy array, read memory-mapped),
``ok.npy`` (False for unreadable images, whose rows are zero) and ``report.json``. The key hashes
the backbone settings (a weights file by size and mtime), the evaluation transform and every image
path with its size and mtime, so any change computes a new cache and an unchanged run reuses it.

Under DDP every rank computes its share (``compute_shard``: images ``rank, rank + world, ...``,
each on its own device, into ``<cache>.shards-<world>/rank<r>/``), and rank 0 merges the shares
once into the same cache a single process writes (``merge_shards``). On ImageNet with ResNet-50
that turns hours of one GPU with the others idle at a barrier (past the default 30-minute
collective timeout) into a share of it on each. When the nodes do not share the ``cache_dir``
(node-local disks), the shares travel through the process group instead and one rank per node
writes the same cache on its own disk (``exchange_shards``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader

from lit_common.cache import load_array, staged
from lit_devise.backbone import BackboneError
from lit_devise.images import ImageDataset, skip_none_collate
from lit_devise.model import DeviseNet

log = logging.getLogger(__name__)
CACHE_FORMAT = 1


def _file_stamp(path: str | None) -> list[Any] | None:
    if not path:
        return None
    if not Path(path).is_file():
        raise BackboneError(f"weights_path {str(path)!r} does not exist")
    stat = os.stat(path)
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(
    backbone: dict[str, Any], transform: dict[str, Any], paths: Sequence[str], dtype: str
) -> str:
    """A hash of everything that changes the activations."""
    digest = hashlib.sha256()
    head = {
        "format": CACHE_FORMAT,
        "backbone": {**backbone, "weights_path": _file_stamp(backbone.get("weights_path"))},
        "transform": transform,
        "dtype": dtype,
        "torch": torch.__version__.split("+")[0],
    }
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"\n{path}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.no_grad()
def _extract(
    net: DeviseNet,
    paths: Sequence[str],
    transform: Callable[[Any], torch.Tensor],
    folder: Path,
    batch_size: int,
    num_workers: int,
    device: str | torch.device,
    dtype: str,
    label: str,
) -> np.ndarray:
    """``folder/features.npy`` (row i: the activations of ``paths[i]``, zero if unreadable) and
    ``folder/ok.npy``; returns ok."""
    target = pick_device(device)
    net = net.to(target).eval()
    dataset = ImageDataset(paths, [0] * len(paths), transform)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=skip_none_collate
    )
    features = np.lib.format.open_memmap(
        folder / "features.npy", mode="w+", dtype=dtype, shape=(len(paths), net.feature_dim)
    )
    ok = np.zeros(len(paths), dtype=bool)
    with Progress(transient=True) as progress:
        task = progress.add_task(f"precompute {net.config.backbone}{label}", total=len(paths))
        for batch in loader:
            n = len(batch["y"]) + batch["skipped"]
            if len(batch["y"]):
                rows = batch["index"].numpy()
                values = net.features(batch["x"].to(target)).float().cpu().numpy()
                features[rows] = values.astype(dtype)
                ok[rows] = True
            progress.advance(task, n)
    features.flush()
    del features
    np.save(folder / "ok.npy", ok)
    return ok


def _report(folder: Path, paths: Sequence[str], ok: np.ndarray, dim: int, dtype: str) -> dict:
    bad = [p for p, good in zip(paths, ok, strict=True) if not good]
    report = {
        "images": len(paths),
        "feature_dim": dim,
        "dtype": dtype,
        "unreadable": len(bad),
        "unreadable_paths": bad[:100],
    }
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    if bad:
        log.warning("%d of %d images unreadable, skipped: %s", len(bad), len(paths), bad[:5])
    return report


def compute_features(
    net: DeviseNet,
    paths: Sequence[str],
    transform: Callable[[Any], torch.Tensor],
    out: Path,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    dtype: str = "float16",
) -> dict[str, Any]:
    """Write ``features.npy``/``ok.npy``/``report.json`` for ``paths`` into directory ``out``.

    The directory appears only when complete (written under a temporary name, then renamed).
    Returns the report: image count, feature size, unreadable images (counted and listed).
    """
    with staged(out, done="report.json") as tmp:
        ok = _extract(net, paths, transform, tmp, batch_size, num_workers, device, dtype, "")
        report = _report(tmp, paths, ok, net.feature_dim, dtype)
    return report


def shard_root(out: Path, world: int) -> Path:
    """Where the ranks of a ``world``-process run write their shares of ``out``."""
    return out.with_name(f"{out.name}.shards-{world}")


def compute_shard(
    net: DeviseNet,
    paths: Sequence[str],
    transform: Callable[[Any], torch.Tensor],
    out: Path,
    rank: int,
    world: int,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    dtype: str = "float16",
) -> Path:
    """Rank ``rank``'s share of ``compute_features``: images ``rank::world``, written (whole or
    not at all) under ``shard_root(out, world)/rank<rank>``; a share already written is kept, so
    a run killed mid-way redoes only the missing shares."""
    folder = shard_root(out, world) / f"rank{rank}"
    log.info("precompute share of rank %d of %d: %d images", rank, world, len(paths[rank::world]))
    if not (folder / "ok.npy").is_file():
        label = f" (rank {rank} of {world})"
        with staged(folder) as tmp:
            mine = list(paths[rank::world])
            _extract(net, mine, transform, tmp, batch_size, num_workers, device, dtype, label)
    return folder


def merge_shards(paths: Sequence[str], out: Path, world: int) -> dict[str, Any]:
    """The ``world`` shares of ``compute_shard`` as the single-process cache ``out`` (rows in
    ``paths`` order), then the shares removed; returns the report."""
    root = shard_root(out, world)
    shares = [root / f"rank{r}" for r in range(world)]
    missing = [str(s) for s in shares if not (s / "ok.npy").is_file()]
    if missing:
        raise RuntimeError(f"precompute shares missing after the barrier: {missing}")
    first = load_array(shares[0] / "features.npy", mmap_mode="r")
    dim, dtype = first.shape[1], str(first.dtype)
    with staged(out, done="report.json") as tmp:
        features = np.lib.format.open_memmap(
            tmp / "features.npy", mode="w+", dtype=dtype, shape=(len(paths), dim)
        )
        ok = np.zeros(len(paths), dtype=bool)
        for rank, share in enumerate(shares):
            part = load_array(share / "features.npy", mmap_mode="r")
            part_ok = load_array(share / "ok.npy")
            if part.shape != (len(range(rank, len(paths), world)), dim):
                raise RuntimeError(f"precompute share {share} has shape {part.shape}")
            features[rank::world] = part
            ok[rank::world] = part_ok
        features.flush()
        del features
        np.save(tmp / "ok.npy", ok)
        report = _report(tmp, paths, ok, dim, dtype)
    shutil.rmtree(root, ignore_errors=True)
    return report


def exchange_shards(
    paths: Sequence[str],
    out: Path,
    rank: int,
    world: int,
    write: bool,
    agree: Callable[[bool], bool],
    device: str | torch.device = "cpu",
    chunk_bytes: int = 64 << 20,
) -> dict[str, Any] | None:
    """When the ranks do not share a cache folder (node-local disks): every rank sends its share
    (``compute_shard``'s folder on its own disk) to every other rank through the process group
    (``device``: the rank's own device, as its backend needs), in chunks of at most
    ``chunk_bytes``, and ranks with ``write`` (one per node) assemble the single-process cache
    ``out`` from them as ``merge_shards`` would. A collective: every rank of the run calls it.

    ``agree(ok)`` is an all-ranks "and" (``reduce_boolean_decision``): what can fail on one rank
    alone (reading its share, creating the folder) is done first and agreed on, and a write that
    fails later only stops writing, so no rank ever leaves the others waiting in a broadcast.
    Returns the report where written, else None."""
    import torch.distributed as dist

    failed: BaseException | None = None
    part = part_ok = None
    with contextlib.ExitStack() as stack:
        try:
            mine = shard_root(out, world) / f"rank{rank}"
            part = load_array(mine / "features.npy", mmap_mode="r")
            part_ok = load_array(mine / "ok.npy")
            tmp = stack.enter_context(staged(out, done="report.json")) if write else None
        except Exception as err:  # every rank learns of it in agree(), instead of hanging
            failed = err
        if not agree(failed is None):
            if failed is not None:
                raise failed
            raise RuntimeError("another rank failed to read its precompute share; see its error")
        assert part is not None and part_ok is not None
        dtypes = ("float16", "float32")
        meta = torch.tensor([part.shape[1], dtypes.index(str(part.dtype))], device=device)
        dist.broadcast(meta, 0)  # one backbone and one dtype: every share has rank 0's
        dim, dtype = int(meta[0]), np.dtype(dtypes[int(meta[1])])
        row_bytes = dim * dtype.itemsize
        step = max(1, chunk_bytes // row_bytes)
        features = ok = None
        if tmp is not None:
            features = np.lib.format.open_memmap(
                tmp / "features.npy", mode="w+", dtype=dtype, shape=(len(paths), dim)
            )
            ok = np.zeros(len(paths), dtype=bool)

        def send(array: np.ndarray | None, n_bytes: int, src: int) -> np.ndarray:
            """``array``'s bytes from rank ``src`` (None elsewhere), as uint8 on every rank."""
            if src == rank:
                assert array is not None
                raw = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
                buf = torch.from_numpy(raw.copy()).to(device)
            else:
                buf = torch.empty(n_bytes, dtype=torch.uint8, device=device)
            dist.broadcast(buf, src)
            return buf.cpu().numpy()

        for src in range(world):
            rows = len(range(src, len(paths), world))
            got_ok = send(part_ok.astype(np.uint8) if src == rank else None, rows, src)
            for start in range(0, rows, step):
                stop = min(rows, start + step)
                got = send(
                    part[start:stop] if src == rank else None, (stop - start) * row_bytes, src
                )
                if features is None or failed is not None:
                    continue
                try:
                    features[src::world][start:stop] = got.view(dtype).reshape(stop - start, dim)
                except Exception as err:  # a full disk: keep taking part, raise at the end
                    failed = err
            if ok is not None:
                ok[src::world] = got_ok.astype(bool)
        if tmp is None or features is None or ok is None:
            return None
        if failed is not None:
            raise failed  # staged() removes the half-written folder
        features.flush()
        del features
        np.save(tmp / "ok.npy", ok)
        return _report(tmp, paths, ok, dim, str(dtype))


class FeatureDataset(torch.utils.data.Dataset):
    """Rows of a precomputed feature array: ``{"x": (feature_dim,), "y": class, "index": i}``."""

    def __init__(self, features: np.ndarray, rows: Sequence[int], labels: Sequence[int]) -> None:
        self.features = features
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = np.array(self.features[self.rows[index]], dtype=np.float32)  # a copy off the memmap
        return {"x": torch.from_numpy(row), "y": int(self.labels[index]), "index": index}
