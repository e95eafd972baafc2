"""lit_devise/datamodule.py, precompute.py: splits, hold-out, dropped classes, activation cache."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lit_common.errors import InputError
from lit_devise import precompute
from lit_devise.datamodule import DeviseDataModule
from lit_devise.images import ImageDataError, load_rgb
from lit_devise.model import DeviseNet, DeviseNetConfig
from lit_devise.split_plan import SplitPlanner, read_plan, write_plan
from lit_devise.synthetic import make_shapes
from lit_devise.transforms import eval_transform, resolve_settings
from tests.helpers import write_unreadable

BACKBONE = {"name": "resnet18", "init_seed": 3}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes(tmp_path_factory.mktemp("shapes"), n_per_class=6, size=32)


def datamodule(root: Path, cache: Path, **kwargs: Any) -> DeviseDataModule:
    settings = {
        "images": str(root / "images"),
        "class_names": str(root / "classes.tsv"),
        "vectors": str(root / "vectors.vec"),
        "nouns": str(root / "nouns.tsv"),
        "valid_fraction": 1 / 3,
        "holdout_classes": ["blue_triangle"],
        "image_size": 32,
        "resize_ratio": 1.0,
        "backbone": BACKBONE,
        "cache_dtype": "float32",
        "batch_size": 8,
        "cache_dir": cache,
    }
    return DeviseDataModule(**(settings | kwargs))


def prepared(dm: DeviseDataModule) -> DeviseDataModule:
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_split_planner_runs_without_a_datamodule(shapes: Path, tmp_path: Path) -> None:
    """The plan is a plain function of its settings: same key and plan on a second call, a new
    key when a split setting changes, and write/read round-trips it."""
    planner = SplitPlanner(
        images=str(shapes / "images"),
        vectors_path=str(shapes / "vectors.vec"),
        class_names_path=str(shapes / "classes.tsv"),
        valid_fraction=1 / 3,
        holdout=["blue_triangle"],
    )
    plan, again = planner.make(), planner.make()
    assert plan["splits"] == again["splits"] and np.array_equal(plan["vectors"], again["vectors"])
    assert planner.key() == planner.key()
    assert dataclasses.replace(planner, split_seed=7).key() != planner.key()
    ids = plan["classes"]["ids"]
    zeroshot = {ids[y] for y in plan["splits"]["zeroshot"]["labels"]}
    assert zeroshot == {"blue_triangle"} and len(ids) == 20
    assert not set(plan["splits"]["train"]["paths"]) & set(plan["splits"]["valid"]["paths"])
    write_plan(plan, tmp_path / "plan")
    body, vectors = read_plan(tmp_path / "plan")
    assert body["splits"] == plan["splits"] and np.array_equal(vectors, plan["vectors"])


def test_splits_hold_out_whole_classes(shapes: Path, tmp_path: Path) -> None:
    dm = prepared(datamodule(shapes, tmp_path))
    info = dm.model_info()
    assert len(info["class_ids"]) == 20 and info["class_vectors"].shape == (20, 50)
    held = info["class_ids"].index("blue_triangle")
    assert info["seen"] == [i != held for i in range(20)]
    sizes = {s: len(dm.datasets[s]) for s in ("train", "valid", "zeroshot")}
    assert sizes == {"train": 19 * 4, "valid": 19 * 2, "zeroshot": 6}
    zeroshot_labels = {dm.datasets["zeroshot"][i]["y"] for i in range(6)}
    assert zeroshot_labels == {held}
    train_paths = set(dm.split_paths("train"))
    assert not train_paths & set(dm.split_paths("valid"))
    assert not any("blue_triangle" in p for p in train_paths)
    assert dm.report["nouns_with_vector"] == dm.report["nouns"] == 22


def test_classes_without_vectors_are_dropped_and_reported(shapes: Path, tmp_path: Path) -> None:
    names = tmp_path / "classes.tsv"
    lines = (shapes / "classes.tsv").read_text().splitlines()
    lines[0] = lines[0].split("\t")[0] + "\tzeppelin"  # no vector for this name
    names.write_text("\n".join(lines) + "\n")
    dm = prepared(
        datamodule(shapes, tmp_path / "cache", class_names=str(names), holdout_classes=[])
    )
    dropped = lines[0].split("\t")[0]
    assert dm.report["classes_without_vector"] == [dropped]
    assert dm.report["images_of_dropped_classes"] == 6
    assert dropped not in dm.model_info()["class_ids"]


def test_holdout_errors(shapes: Path, tmp_path: Path) -> None:
    with pytest.raises(ImageDataError, match=r"holdout_classes \['unicorn'\]"):
        datamodule(shapes, tmp_path, holdout_classes=["unicorn"]).prepare_data()


def test_cached_activations_equal_the_model_backbone(shapes: Path, tmp_path: Path) -> None:
    dm = prepared(datamodule(shapes, tmp_path))
    net = DeviseNet(DeviseNetConfig(backbone="resnet18", init_seed=3), out_dim=50).eval()
    transform = eval_transform(**dm.transform_settings)
    for i in (0, 5):
        image = transform(load_rgb(dm.split_paths("train")[i]))[None]
        with torch.no_grad():
            expected = net.features(image)[0]
        torch.testing.assert_close(dm.datasets["train"][i]["x"], expected, rtol=1e-4, atol=1e-5)


def test_cache_is_reused_and_invalidated(
    shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(shapes, root)
    calls: list[int] = []
    real = precompute.compute_features

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr("lit_devise.datamodule.compute_features", counting)
    cache = tmp_path / "cache"
    prepared(datamodule(root, cache))
    prepared(datamodule(root, cache))
    assert calls == [120], "the second run reuses the cache"
    prepared(datamodule(root, cache, image_size=24))  # another transform
    assert len(calls) == 2
    prepared(datamodule(root, cache, backbone={**BACKBONE, "init_seed": 4}))  # another backbone
    assert len(calls) == 3
    image = root / "images" / "red_circle" / "0000.png"
    image.write_bytes((root / "images" / "red_square" / "0000.png").read_bytes())
    os.utime(image, ns=(1, 1))
    prepared(datamodule(root, cache))  # an image changed
    assert len(calls) == 4


def test_unreadable_images_are_skipped_and_counted(shapes: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(shapes, root)
    write_unreadable(root / "images" / "red_circle")
    (root / "images" / "red_circle" / "good.jpg").unlink()
    dm = prepared(datamodule(root, tmp_path / "cache", valid_fraction=0.0, holdout_classes=[]))
    assert dm.report["unreadable_images"] == 3
    assert len(dm.datasets["train"]) == 120
    report = json.loads((dm.features_path(dm.plan) / "report.json").read_text())
    assert sorted(Path(p).name for p in report["unreadable_paths"]) == [
        "empty.jpg",
        "text.jpg",
        "truncated.jpg",
    ]
    # Without precompute the loader skips them per batch instead.
    dm = prepared(
        datamodule(
            root,
            tmp_path / "cache",
            valid_fraction=0.0,
            holdout_classes=[],
            precompute=False,
            batch_size=200,
        )
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["skipped"] == 3 and len(batch["y"]) == 120 and batch["x"].shape[1:] == (3, 32, 32)


def test_every_rank_gets_the_same_number_of_batches(shapes: Path, tmp_path: Path) -> None:
    dm = prepared(datamodule(shapes, tmp_path, batch_size=7))

    class FakeTrainer:
        world_size = 2

        def __init__(self, rank: int) -> None:
            self.global_rank = rank

    seen = []
    for rank in (0, 1):
        dm.trainer = FakeTrainer(rank)  # type: ignore[assignment]
        loaders = [dm.train_dataloader(), *dm.val_dataloader()]
        seen.append([len(list(loader)) for loader in loaders])
        indices = [int(i) for b in loaders[1] for i in b["index"]]
        assert len(indices) == 19  # 38 valid items over 2 ranks
    assert seen[0] == seen[1]
    dm.trainer = None


def test_precompute_writes_nothing_when_interrupted(shapes: Path, tmp_path: Path) -> None:
    net = DeviseNet(DeviseNetConfig(backbone="resnet18"), out_dim=4)
    paths = [str(p) for p in sorted((shapes / "images").rglob("*.png"))[:3]]

    def broken(image: Any) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        precompute.compute_features(net, paths, broken, tmp_path / "features")
    assert list(tmp_path.iterdir()) == []
    np.testing.assert_equal(len(paths), 3)


def test_no_batch_of_one(shapes: Path, tmp_path: Path) -> None:
    from torch.utils.data import SequentialSampler

    from lit_devise.batch_sampler import NoSingletonBatchSampler

    for n, size, expected in ((9, 4, [4, 5]), (10, 4, [4, 4, 2]), (1, 4, [1]), (8, 4, [4, 4])):
        sampler = NoSingletonBatchSampler(SequentialSampler(range(n)), size)
        batches = list(sampler)
        assert [len(b) for b in batches] == expected and len(sampler) == len(expected)
        assert sorted(i for b in batches for i in b) == list(range(n))


def test_kaggle_layout_end_to_end(tmp_path: Path) -> None:
    from tests.helpers import make_kaggle, write_vec

    make_kaggle(tmp_path / "imagenet")
    vectors = write_vec(tmp_path / "v.vec", {"tench": [1.0, 0.0], "goldfish": [0.0, 1.0]})
    dm = prepared(
        DeviseDataModule(
            images=str(tmp_path / "imagenet"), vectors=str(vectors), layout="kaggle",
            image_size=16, resize_ratio=1.0, backbone=BACKBONE, cache_dir=tmp_path / "cache",
        )
    )  # fmt: skip
    assert dm.model_info()["class_ids"] == ["n01", "n02"]
    assert [len(dm.datasets[s]) for s in ("train", "valid", "zeroshot")] == [4, 3, 0]
    valid = [Path(p).name for p in dm.split_paths("valid")]
    labels = {name: dm.datasets["valid"][i]["y"] for i, name in enumerate(valid)}
    assert labels == {
        "ILSVRC2012_val_00000000.JPEG": 1,
        "ILSVRC2012_val_00000001.JPEG": 0,
        "ILSVRC2012_val_00000002.JPEG": 1,
    }


def test_preprocessing_follows_the_backbone_weights_unless_the_config_says() -> None:
    """torchvision weights bring their own crop, resize, normalisation and interpolation (read from
    their metadata: nothing is downloaded); a config value overrides each one."""
    resnet50 = {"backbone": "resnet50", "weights": "DEFAULT"}
    assert resolve_settings(resnet50) == {
        "image_size": 224, "resize_ratio": 224 / 232, "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225], "interpolation": "bilinear",
    }  # fmt: skip
    effnet = resolve_settings({"backbone": "efficientnet_b3", "weights": "IMAGENET1K_V1"})
    assert (effnet["image_size"], effnet["resize_ratio"], effnet["interpolation"]) == (
        300, 300 / 320, "bicubic",
    )  # fmt: skip
    mine = resolve_settings(resnet50, image_size=64, mean=[0.5, 0.5, 0.5])
    assert (mine["image_size"], mine["mean"], mine["resize_ratio"]) == (64, [0.5] * 3, 224 / 232)
    plain = resolve_settings({"backbone": "cifar_resnet20", "weights": None})
    assert (plain["image_size"], plain["resize_ratio"], plain["interpolation"]) == (
        224, 0.875, "bilinear",
    )  # fmt: skip
    with pytest.raises(InputError, match=r"interpolation='lanczos' unknown; valid: \['nearest'"):
        resolve_settings(resnet50, interpolation="lanczos")
    with pytest.raises(InputError, match=r"image_size=0: expected an int >= 8"):
        resolve_settings(resnet50, image_size=0)
    transform = eval_transform(**effnet)
    assert transform.transforms[0].size == 320 and transform.transforms[1].size == (300, 300)


def test_the_datamodule_uses_the_weights_preprocessing(shapes: Path, tmp_path: Path) -> None:
    dm = datamodule(shapes, tmp_path, image_size=None, resize_ratio=None,
                    backbone={"name": "resnet50", "weights": "DEFAULT"})  # fmt: skip
    assert dm.transform_settings["resize_ratio"] == 224 / 232
    assert dm.transform_settings["image_size"] == 224
    assert dm.eval_transform().transforms[0].size == 232


def test_a_failed_precompute_share_ends_every_rank_not_a_barrier() -> None:
    """Under DDP the ranks agree on success with a collective instead of waiting at a barrier:
    the failing rank raises its own error, the others a clear one, none waits for the timeout."""
    from types import SimpleNamespace

    from lit_devise.datamodule import _all_or_raise

    def trainer(all_ok: bool) -> Any:
        decide = lambda ok, all=True: ok and all_ok  # noqa: E731 - the other ranks' votes
        return SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=decide))

    _all_or_raise(trainer(True), None, "merging")  # everyone succeeded
    with pytest.raises(ImageDataError, match="another DDP rank failed while merging"):
        _all_or_raise(trainer(False), None, "merging")
    with pytest.raises(OSError, match="disk"):
        _all_or_raise(trainer(False), OSError("disk"), "merging")


def test_a_single_image_dataset_is_one_clear_error(tmp_path: Path) -> None:
    """One image cannot train the head (its BatchNorm needs two): refused, not a run that
    trains on nothing."""
    from tests.helpers import photo, write_vec

    photo(tmp_path / "img" / "red" / "a.png")
    vectors = write_vec(tmp_path / "v.vec", {"red": [1.0, 0.0, 0.5]})
    planner = SplitPlanner(images=str(tmp_path / "img"), vectors_path=str(vectors), holdout=[])
    with pytest.raises(ImageDataError, match=r"1 training image\(s\) left .* at least 2"):
        planner.make()
