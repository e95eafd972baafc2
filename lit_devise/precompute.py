"""Precompute: one pass of the frozen backbone over every image, pooled activations to disk.

With a frozen backbone the head sees the same activations every epoch, so the lesson computes
them once (fast.ai's ``precompute=True``) and trains the head on them many times faster. The cache
is ``<cache_dir>/features-<key>/`` with ``features.npy`` (a NumPy array, read memory-mapped),
``ok.npy`` (False for unreadable images, whose rows are zero) and ``report.json``. The key hashes
the backbone settings (a weights file by size and mtime), the evaluation transform and every image
path with its size and mtime, so any change computes a new cache and an unchanged run reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader

from lit_common.cache import staged
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
def compute_features(
    net: DeviseNet,
    paths: Sequence[str],
    transform: Callable[[Any], torch.Tensor],
    out: Path,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str = "auto",
    dtype: str = "float16",
) -> dict[str, Any]:
    """Write ``features.npy``/``ok.npy``/``report.json`` for ``paths`` into directory ``out``.

    The directory appears only when complete (written under a temporary name, then renamed).
    Returns the report: image count, feature size, unreadable images (counted and listed).
    """
    target = pick_device(device)
    net = net.to(target).eval()
    dataset = ImageDataset(paths, [0] * len(paths), transform)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=skip_none_collate
    )
    with staged(out) as tmp:
        features = np.lib.format.open_memmap(
            tmp / "features.npy", mode="w+", dtype=dtype, shape=(len(paths), net.feature_dim)
        )
        ok = np.zeros(len(paths), dtype=bool)
        with Progress(transient=True) as progress:
            task = progress.add_task(f"precompute {net.config.backbone}", total=len(paths))
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
        np.save(tmp / "ok.npy", ok)
        bad = [p for p, good in zip(paths, ok, strict=True) if not good]
        report = {
            "images": len(paths),
            "feature_dim": net.feature_dim,
            "dtype": dtype,
            "unreadable": len(bad),
            "unreadable_paths": bad[:100],
        }
        (tmp / "report.json").write_text(json.dumps(report, indent=1))
    if bad:
        log.warning("%d of %d images unreadable, skipped: %s", len(bad), len(paths), bad[:5])
    return report


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
