"""Precompute speed-up: one head epoch on cached activations against one epoch of full forwards.

Builds the DeViSE data twice through ``DeviseDataModule`` (``precompute`` on and off), then times
one training epoch of the same head (forward, cosine loss, backward, AdamW step) fed (a) cached
activations and (b) images through the frozen backbone (the fine-tuning path without
precompute: decoding, augmentation, backbone forward). The one-off precompute pass is timed too,
so the break-even epoch count follows. The last line is one JSON object.

    python bench/precompute.py [--images DIR --class-names FILE --vectors FILE]
                               [--backbone resnet18] [--image-size 128] [--limit 1000]

Defaults use the Imagenette photos and GloVe vectors of ../shared/data when present, else the
embedded shapes dataset.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lit_devise.datamodule import DeviseDataModule
from lit_devise.model import DeviseNet, DeviseNetConfig
from lit_devise.module import devise_loss
from lit_devise.synthetic import make_shapes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def epoch_seconds(net: DeviseNet, loader: Any, vectors: torch.Tensor) -> tuple[float, int]:
    optimizer = torch.optim.AdamW(net.head.parameters(), lr=1e-3)
    net.train()
    start, seen = time.perf_counter(), 0
    for batch in loader:
        loss = devise_loss(net(batch["x"]), vectors[batch["y"]])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(batch["y"])
    return time.perf_counter() - start, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images")
    parser.add_argument("--class-names")
    parser.add_argument("--vectors")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=100, help="images per class")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-precompute-"))
    if args.images:
        data = {"images": args.images, "class_names": args.class_names, "vectors": args.vectors}
    elif (SHARED / "imagenette-val").is_dir():
        data = {
            "images": str(SHARED / "imagenette-val"),
            "class_names": str(SHARED / "imagenette-val" / "classes.tsv"),
            "vectors": str(SHARED / "wordvec" / "glove.6B.50d.subset.vec"),
        }
    else:
        root = make_shapes(tmp / "shapes")
        data = {
            "images": str(root / "images"),
            "class_names": str(root / "classes.tsv"),
            "vectors": str(root / "vectors.vec"),
        }
    config = DeviseNetConfig(backbone=args.backbone, freeze=True)
    timings: dict[str, Any] = {}
    for precompute in (True, False):
        dm = DeviseDataModule(
            **data,
            valid_fraction=0.0,
            max_per_class=args.limit,
            image_size=args.image_size,
            precompute=precompute,
            backbone={"name": args.backbone},
            batch_size=args.batch_size,
            cache_dir=tmp / "cache",
            cache_dtype="float32",
        )
        start = time.perf_counter()
        dm.prepare_data()
        prepare_s = time.perf_counter() - start
        dm.setup("fit")
        net = DeviseNet(config, out_dim=dm.class_vectors.shape[1])
        vectors = torch.from_numpy(dm.class_vectors)
        seconds, seen = epoch_seconds(net, dm.train_dataloader(), vectors)
        key = "cached" if precompute else "full_forward"
        timings[key] = {
            "epoch_s": round(seconds, 3),
            "images": seen,
            "prepare_s": round(prepare_s, 2),
        }
        print(
            f"{key:12s} prepare {prepare_s:7.2f}s  epoch {seconds:7.3f}s  ({seen} images)",
            flush=True,
        )
    speedup = timings["full_forward"]["epoch_s"] / timings["cached"]["epoch_s"]
    precompute_s = timings["cached"]["prepare_s"] - timings["full_forward"]["prepare_s"]
    result = {
        **timings,
        "speedup": round(speedup, 1),
        "precompute_s": round(precompute_s, 2),
        "break_even_epochs": round(
            precompute_s
            / max(1e-9, timings["full_forward"]["epoch_s"] - timings["cached"]["epoch_s"]),
            2,
        ),
        "backbone": args.backbone,
        "image_size": args.image_size,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
