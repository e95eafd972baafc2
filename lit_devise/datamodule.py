"""``DeviseDataModule``: image folders -> label vectors -> train/valid/zero-shot splits -> batches.

``prepare_data`` (local rank 0 only) writes the smoke dataset when configured, scans the images,
looks every class up in the word vectors (classes without one are dropped, with their images),
splits train/valid and holds whole classes out for zero-shot evaluation, then, with
``precompute``, runs the frozen backbone once over every image (``precompute.py``). All of it is
cached under ``cache_dir`` and reused while nothing changes. ``setup`` (every rank) only loads.

Batches are ``{"x", "y", "index"}``: ``x`` is (batch, feature_dim) cached activations with
``precompute``, else (batch, 3, H, W) images (augmented in training); ``y`` indexes
``model_info()["class_ids"]``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import transforms as T

from lit_common.cache import load_array
from lit_common.errors import check_choice
from lit_common.ranges import SIZE, Int, Range, Real, check_ranges
from lit_common.resumable import (
    ResumableDataLoader,
    SameWorldOnResume,
    private_generator,
    trainer_batches_done,
)
from lit_devise.batch_sampler import NoSingletonBatchSampler
from lit_devise.images import (
    ImageDataError,
    ImageDataset,
    skip_none_collate,
)
from lit_devise.model import DeviseNet, DeviseNetConfig
from lit_devise.precompute import (
    FeatureDataset,
    cache_key,
    compute_features,
    compute_shard,
    exchange_shards,
    merge_shards,
    shard_root,
)
from lit_devise.split_plan import SPLITS, SplitPlanner, read_plan, write_plan
from lit_devise.synthetic import make_shapes
from lit_devise.transforms import eval_transform, resolve_settings, train_transform

log = logging.getLogger(__name__)


class DeviseDataModule(SameWorldOnResume, pl.LightningDataModule):
    """Images with word-vector targets for DeViSE.

    Args:
        images: image root (``folder``: ``root/<class>/<image>``; ``kaggle``: the folder holding
            ``LOC_synset_mapping.txt``).
        vectors: fastText ``.bin`` or ``.vec`` word vectors (any word2vec text file).
        layout: ``folder`` or ``kaggle``.
        class_names: ``class<TAB>names`` mapping file (``folder`` layout); None: folder names.
        valid_images: a validation folder with the same classes; None splits ``valid_fraction``
            of each class off ``images`` (``kaggle`` uses ImageNet's validation split).
        valid_fraction: share of each class's images held out for validation.
        nouns: a ``wnid<TAB>lemma`` noun list, the open vocabulary for search (reported coverage).
        holdout_classes: class ids kept out of training for zero-shot evaluation, or a number of
            classes drawn at random with ``split_seed``.
        split_seed: seed of the valid split and of random hold-out classes.
        max_per_class: at most this many images per class and split (quick runs); None: all.
        synthetic: ``make_shapes`` arguments (``root``, ``n_per_class``, ``size``, ``dim``,
            ``seed``): write the embedded smoke dataset first.
        image_size: side of the square crop fed to the backbone; None: the backbone weights'
            own (``weights.transforms()``), else 224.
        resize_ratio: evaluation resizes the short side to ``image_size / resize_ratio`` and
            centre-crops; None: the weights' own (ResNet-50 ``DEFAULT``: 224/232), else 0.875.
        mean: normalisation mean; None: the weights' own, else ImageNet's.
        std: normalisation std; None: the weights' own, else ImageNet's.
        interpolation: resize interpolation (``bilinear``, ``bicubic``, ``nearest``); None: the
            weights' own, else bilinear.
        augment: training augmentation when not precomputing: ``crop_scale``
            (RandomResizedCrop scale range), ``hflip`` (bool), ``color_jitter`` (brightness,
            contrast and saturation).
        precompute: cache the frozen backbone's activations and train the head on them.
        backbone: ``name``, ``weights``, ``weights_path`` and ``init_seed`` of the model's
            backbone (the configs interpolate them from ``model.net``), used to precompute.
        precompute_batch_size: images per backbone pass while precomputing.
        precompute_device: ``auto`` (CUDA when available), ``cpu`` or ``cuda:N``.
        cache_dtype: ``float16`` halves the activation cache; ``float32`` keeps it exact.
        batch_size: per device.
        eval_batch_size: per device; None: ``batch_size``.
        num_workers: DataLoader workers.
        seed: shuffling seed (per epoch: ``seed + epoch``).
        cache_dir: where plans and activations are cached.
    """

    RANGES: ClassVar[dict[str, Range]] = {
        "valid_fraction": Real(0.0, 1.0, high_open=True),
        "split_seed": Int(0, 2**32 - 1),
        "max_per_class": Int(1, null=True),
        "synthetic.n_per_class": Int(2, 100_000),
        "synthetic.size": Int(8, 4096),
        "synthetic.dim": Int(2, 4096),
        "synthetic.seed": Int(0, 2**32 - 1),
        "image_size": Int(8, 4096, null=True),
        "resize_ratio": Real(0.0, 1.0, low_open=True, null=True),
        "mean[]": Real(0.0, 1.0),
        "std[]": Real(0.0, low_open=True),
        "augment.crop_scale[]": Real(0.0, 1.0, low_open=True),
        "augment.color_jitter": Real(0.0, 1.0),
        "precompute_batch_size": SIZE,
        "batch_size": SIZE,
        "eval_batch_size": Int(1, 65_536, null=True),
        "num_workers": Int(0, 256),
        "seed": Int(0, 2**32 - 1),
    }

    def __init__(
        self,
        images: str,
        vectors: str,
        layout: str = "folder",
        class_names: str | None = None,
        valid_images: str | None = None,
        valid_fraction: float = 0.1,
        nouns: str | None = None,
        holdout_classes: Sequence[str] | int = (),
        split_seed: int = 42,
        max_per_class: int | None = None,
        synthetic: dict[str, Any] | None = None,
        image_size: int | None = None,
        resize_ratio: float | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        interpolation: str | None = None,
        augment: dict[str, Any] | None = None,
        precompute: bool = True,
        backbone: dict[str, Any] | None = None,
        precompute_batch_size: int = 64,
        precompute_device: str = "auto",
        cache_dtype: str = "float16",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | Path = "data/cache",
    ) -> None:
        super().__init__()
        check_ranges(locals(), self.RANGES)
        if isinstance(holdout_classes, int | float):  # a number of classes; a list is by name
            Int(0).check("holdout_classes", holdout_classes)
        check_choice("layout", layout, ("folder", "kaggle"))
        check_choice("cache_dtype", cache_dtype, ("float16", "float32"))
        self.vectors_path, self.nouns_path, self.synthetic = vectors, nouns, synthetic
        self.planner = SplitPlanner(
            images=images,
            vectors_path=vectors,
            layout=layout,
            class_names_path=class_names,
            valid_images=valid_images,
            valid_fraction=valid_fraction,
            nouns_path=nouns,
            holdout=holdout_classes if isinstance(holdout_classes, int) else list(holdout_classes),
            split_seed=split_seed,
            max_per_class=max_per_class,
            memo=Path(cache_dir) / "file_hashes.json",
        )
        self.augment = {"crop_scale": [0.35, 1.0], "hflip": True, "color_jitter": 0.0}
        self.augment.update(augment or {})
        self.precompute = precompute
        self.backbone = {
            "backbone": "resnet50",
            "weights": None,
            "weights_path": None,
            "init_seed": 0,
        }
        self.backbone.update(
            {("backbone" if k == "name" else k): v for k, v in (backbone or {}).items()}
        )
        self.transform_settings = resolve_settings(
            self.backbone, image_size, resize_ratio, mean, std, interpolation
        )
        self.precompute_batch_size, self.precompute_device = (
            precompute_batch_size,
            precompute_device,
        )
        self.cache_dtype = cache_dtype
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed
        self.cache_root = Path(cache_dir)
        self.plan: dict[str, Any] = {}
        self.class_vectors: np.ndarray | None = None
        self.datasets: dict[str, Dataset] = {}
        self.paths: dict[str, list[str]] = {}
        self.report: dict[str, Any] = {}

    # -- transforms ---------------------------------------------------------------------------
    def eval_transform(self) -> T.Compose:
        return eval_transform(**self.transform_settings)

    def train_transform(self) -> T.Compose:
        s = self.transform_settings
        return train_transform(
            s["image_size"], s["mean"], s["std"], **self.augment, interpolation=s["interpolation"]
        )

    @property
    def plan_path(self) -> Path:
        return self.cache_root / f"plan-{self.planner.key()}"

    # -- Lightning hooks ------------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.synthetic:
            make_shapes(**self.synthetic)
        if not (self.plan_path / "plan.json").is_file():
            write_plan(self.planner.make(), self.plan_path)
        plan = json.loads((self.plan_path / "plan.json").read_text())
        if self.precompute and self._world() == 1:  # under DDP every rank shares it in setup
            features = self.features_path(plan)
            if not (features / "report.json").is_file():
                self._precompute(plan, features)
        self._log_report(plan)

    def _world(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.world_size) if trainer is not None else 1

    def _backbone_net(self) -> DeviseNet:
        return DeviseNet(DeviseNetConfig(**self.backbone, freeze=True), out_dim=1)

    def _precompute(self, plan: dict[str, Any], features: Path) -> None:
        # Forked RNG: building the net and iterating a DataLoader draw random numbers, and a run
        # must train the same whether or not its cache already existed.
        with torch.random.fork_rng(devices=[]):
            compute_features(
                self._backbone_net(),
                self._all_paths(plan),
                self.eval_transform(),
                features,
                self.precompute_batch_size,
                self.num_workers,
                self.precompute_device,
                self.cache_dtype,
            )

    def _precompute_shared(self, plan: dict[str, Any], features: Path) -> None:
        """Under DDP: every rank computes its share on its own device; when every rank sees
        every share (one shared cache folder) rank 0 merges them once, else (node-local
        folders) the shares travel through the process group and local rank 0 of each node
        writes the merged cache (``precompute.py``); every rank waits for it."""
        trainer = self.trainer
        device = self.precompute_device
        if device == "auto":
            device = trainer.strategy.root_device
        failed: BaseException | None = None
        try:
            with torch.random.fork_rng(devices=[]):  # as in _precompute
                compute_shard(
                    self._backbone_net(),
                    self._all_paths(plan),
                    self.eval_transform(),
                    features,
                    trainer.global_rank,
                    trainer.world_size,
                    self.precompute_batch_size,
                    self.num_workers,
                    device,
                    self.cache_dtype,
                )
        except Exception as err:  # every rank learns of it below, instead of waiting forever
            failed = err
        _all_or_raise(trainer, failed, "computing its share of the activations")
        failed = None
        paths, world = self._all_paths(plan), trainer.world_size
        root = shard_root(features, world)
        seen = all((root / f"rank{r}" / "ok.npy").is_file() for r in range(world))
        shared = trainer.strategy.reduce_boolean_decision(seen, all=True)
        try:
            if shared and trainer.global_rank == 0:
                merge_shards(paths, features, world)
            elif not shared:  # node-local cache folders: through the process group
                write = trainer.local_rank == 0 and not (features / "report.json").is_file()
                exchange_shards(
                    paths, features, trainer.global_rank, world, write,
                    lambda ok: bool(trainer.strategy.reduce_boolean_decision(ok, all=True)),
                    trainer.strategy.root_device,
                )  # fmt: skip
        except Exception as err:
            failed = err
        _all_or_raise(trainer, failed, "merging the activations")
        if not shared and trainer.local_rank == 0:
            shutil.rmtree(root, ignore_errors=True)  # every rank has sent its share by now

    @staticmethod
    def _all_paths(plan: dict[str, Any]) -> list[str]:
        return [p for s in SPLITS for p in plan["splits"][s]["paths"]]

    def features_path(self, plan: dict[str, Any]) -> Path:
        transform = dict(self.transform_settings)
        if transform.get("interpolation") == "bilinear":  # the default keeps the key it had
            # when interpolation was not a setting, so existing caches stay valid
            del transform["interpolation"]
        key = cache_key(self.backbone, transform, self._all_paths(plan), self.cache_dtype)
        return self.cache_root / f"features-{key}"

    def _log_report(self, plan: dict[str, Any]) -> None:
        r = plan["report"]
        log.info(
            "DeViSE data: %d/%d classes with a word vector (%d-d); images train %d, valid %d, "
            "zero-shot %d (held out: %s)",
            r["classes_with_vector"],
            r["classes"],
            r["vector_dim"],
            r["images"]["train"],
            r["images"]["valid"],
            r["images"]["zeroshot"],
            ", ".join(r["holdout_classes"]) or "none",
        )
        if r["classes_without_vector"]:
            log.warning(
                "dropped %d classes without a word vector (%d images): %s",
                len(r["classes_without_vector"]),
                r["images_of_dropped_classes"],
                ", ".join(r["classes_without_vector"][:20]),
            )
        if r["nouns"]:
            log.info(
                "open vocabulary: %d of %d nouns have a vector", r["nouns_with_vector"], r["nouns"]
            )
        if r["capped_by_max_per_class"]:
            log.info("max_per_class left out %d images", r["capped_by_max_per_class"])

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if not (self.plan_path / "plan.json").is_file():
            raise RuntimeError(f"no prepared data in {self.plan_path}; call prepare_data() first")
        self.plan, self.class_vectors = read_plan(self.plan_path)
        self.report = dict(self.plan["report"])
        splits = self.plan["splits"]
        if self.precompute:
            features_dir = self.features_path(self.plan)
            missing = not (features_dir / "report.json").is_file()
            # One decision for all ranks: with node-local cache folders one node may have the
            # cache while another lacks it, and all ranks must take part in computing it.
            if self._world() > 1 and self.trainer.strategy.reduce_boolean_decision(
                missing, all=False
            ):
                self._precompute_shared(self.plan, features_dir)
            features = load_array(features_dir / "features.npy", mmap_mode="r")
            ok = load_array(features_dir / "ok.npy")
            self.report["unreadable_images"] = int((~ok).sum())
            start = 0
            for split in SPLITS:
                n = len(splits[split]["paths"])
                rows = [start + i for i in range(n) if ok[start + i]]
                labels = [splits[split]["labels"][r - start] for r in rows]
                self.datasets[split] = FeatureDataset(features, rows, labels)
                self.paths[split] = [splits[split]["paths"][r - start] for r in rows]
                start += n
        else:
            for split in SPLITS:
                transform = self.train_transform() if split == "train" else self.eval_transform()
                self.paths[split] = splits[split]["paths"]
                self.datasets[split] = ImageDataset(
                    self.paths[split], splits[split]["labels"], transform
                )

    def model_info(self) -> dict[str, Any]:
        """What search needs besides weights: stored in the checkpoint."""
        assert self.class_vectors is not None, "call setup() first"
        return {
            "class_ids": self.plan["classes"]["ids"],
            "class_names": self.plan["classes"]["names"],
            "seen": self.plan["classes"]["seen"],
            "class_vectors": torch.from_numpy(self.class_vectors),
            "vectors_path": str(Path(self.vectors_path).resolve()),
            "nouns_path": str(Path(self.nouns_path).resolve()) if self.nouns_path else None,
            "transform": self.transform_settings,
            "backbone": dict(self.backbone),
            "precompute": self.precompute,
        }

    def split_paths(self, split: str) -> list[str]:
        """Image paths of a split, in dataset order (``index`` of its batches)."""
        return self.paths[split]

    # -- loaders ------------------------------------------------------------------------------
    def _loader(self, split: str, train: bool) -> DataLoader:
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        dataset = self.datasets[split]
        # Every rank gets the same number of batches (DistributedSampler pads by repeating items).
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=train, seed=self.seed, drop_last=False
        )
        size = self.batch_size if train else self.eval_batch_size
        settings = {
            "collate_fn": None if self.precompute else skip_none_collate,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "generator": private_generator(),
        }
        batches = NoSingletonBatchSampler(sampler, size)
        if train:  # resumes mid-epoch and reshuffles per epoch (set_epoch)
            return ResumableDataLoader(dataset, batches, trainer_batches_done(trainer), **settings)
        return DataLoader(dataset, batch_sampler=batches, **settings)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> list[DataLoader]:
        loaders = [self._loader("valid", train=False)]
        if len(self.datasets["zeroshot"]):
            loaders.append(self._loader("zeroshot", train=False))
        return loaders


def _all_or_raise(trainer: Any, failed: BaseException | None, what: str) -> None:
    """A collective in place of a barrier: every rank learns whether all ranks succeeded, so a
    failure on one rank ends every rank with an error instead of leaving them at a barrier until
    the collective timeout. The failing rank raises its own error."""
    if trainer.strategy.reduce_boolean_decision(failed is None, all=True):
        return
    if failed is not None:
        raise failed
    raise ImageDataError(f"another DDP rank failed while {what}; see its error above")
