"""lit_devise/module.py: loss, hit@k, checkpoints, and a small run that learns the toy mapping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from lit_devise.module import (
    CheckpointError,
    ConfigMismatchError,
    DeviseModule,
    HitAtK,
    devise_loss,
)

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train


def test_cosine_loss_is_one_minus_cosine_and_scale_free() -> None:
    target = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert devise_loss(target * 3, target).item() == pytest.approx(0.0, abs=1e-6)
    assert devise_loss(-target, target).item() == pytest.approx(2.0)
    pred = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    assert devise_loss(pred, target).item() == pytest.approx((1 - 2**-0.5) / 2)
    assert devise_loss(pred, target, "l1").item() == pytest.approx(0.25)


def test_hit_at_k_by_hand() -> None:
    metric = HitAtK([1, 2, 3])
    scores = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.1, 0.7, 0.4]])
    metric.update(scores, torch.tensor([0, 1, 0]))  # ranks 0, 1, 2
    torch.testing.assert_close(metric.compute(), torch.tensor([1 / 3, 2 / 3, 1.0]))


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="loss='mse' unknown"):
        DeviseModule({"backbone": "resnet18"}, loss="mse")
    with pytest.raises(ValueError, match="hit_ks"):
        DeviseModule({"backbone": "resnet18"}, hit_ks=[0])


def test_checkpoint_errors(tmp_path: Path, tiny_run: dict[str, Any]) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        DeviseModule.from_checkpoint(tmp_path / "none.ckpt")
    with pytest.raises(CheckpointError, match="not a DeViSE checkpoint"):
        DeviseModule.from_checkpoint(tiny_run["ckpt"])  # a translation checkpoint
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_run["ckpt"].read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        DeviseModule.from_checkpoint(truncated)


def test_precompute_needs_the_same_frozen_backbone(tmp_path: Path, data_dir: Path) -> None:
    import train
    from tests.conftest import DEVISE_RUN, compose_train

    cfg = compose_train(
        tmp_path,
        *DEVISE_RUN,
        f"paths.data_dir={data_dir}",
        "data.precompute=true",
        "model.net.freeze=false",
    )
    with pytest.raises(ConfigMismatchError, match="precompute needs the same frozen backbone"):
        train.train(cfg)


def test_small_run_learns_the_toy_mapping(devise_run: dict[str, Any]) -> None:
    metrics = devise_run["metrics"]
    # 18 seen classes (chance hit@1 = 0.056) and 2 held-out ones (chance 0.5).
    assert metrics["val/hit_at_1"] > 0.4 and metrics["val/hit_at_5"] > 0.9
    assert metrics["zeroshot/hit_at_1"] > 0.6
    assert metrics["val/cos"] > 0.7
    grids = list(devise_run["dir"].rglob("val_search/step*.png"))
    assert grids, "a search-result grid per validation"


def test_restored_module_embeds_like_the_trained_one(devise_run: dict[str, Any]) -> None:
    module = DeviseModule.from_checkpoint(devise_run["ckpt"])
    info = module.devise
    assert info is not None and len(info["class_ids"]) == 20 and sum(info["seen"]) == 18
    assert module.hparams.net["backbone"] == "resnet18"
    embedding = module.embed(torch.randn(2, 3, 48, 48))
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))


def test_load_from_checkpoint_needs_no_trainer_and_embeds_alike(
    devise_run: dict[str, Any],
) -> None:
    """Lightning's own `load_from_checkpoint` (no Trainer, no datamodule, no weight download)
    embeds exactly as `from_checkpoint` does."""
    loaded = DeviseModule.load_from_checkpoint(devise_run["ckpt"]).eval()
    reference = DeviseModule.from_checkpoint(devise_run["ckpt"])
    assert loaded.devise is not None and reference.devise is not None
    assert loaded.devise["class_ids"] == reference.devise["class_ids"]
    images = torch.randn(3, 3, 48, 48)
    torch.testing.assert_close(loaded.embed(images), reference.embed(images))


def test_finetune_trains_the_backbone_and_skips_unreadable_images(tmp_path: Path) -> None:
    import train
    from lit_devise.synthetic import make_shapes
    from tests.conftest import DEVISE_RUN, compose_train
    from tests.helpers import write_unreadable

    root = make_shapes(tmp_path / "data" / "shapes", n_per_class=4, size=32)
    write_unreadable(root / "images" / "red_circle")
    (root / "images" / "red_circle" / "good.jpg").unlink()
    cfg = compose_train(
        tmp_path, *DEVISE_RUN, "experiment=devise_finetune", f"paths.data_dir={tmp_path / 'data'}",
        "data.synthetic.n_per_class=4", "data.synthetic.size=32", "data.image_size=32",
        "data.batch_size=40", "trainer.max_epochs=1", "data.holdout_classes=[]",
    )  # fmt: skip
    datamodule, model, trainer = train.build(cfg)
    trainer.fit(model, datamodule=datamodule)
    assert not datamodule.precompute
    groups = trainer.optimizers[0].param_groups
    assert len(groups) == 2 and groups[0]["params"][0] is next(model.net.body.parameters())
    fresh = DeviseModule(cfg.model.net, devise=model.devise)
    pairs = zip(model.net.body.parameters(), fresh.net.body.parameters(), strict=True)
    moved = [not torch.equal(a, b) for a, b in pairs]
    assert all(moved), "every backbone weight was trained"
    junk = {"truncated.jpg", "empty.jpg", "text.jpg"}
    in_train = sum(Path(p).name in junk for p in datamodule.split_paths("train"))
    assert in_train > 0 and trainer.callback_metrics["train/skipped_images"] == in_train


def test_resuming_on_other_data_is_refused_with_what_differs(devise_run: dict[str, Any]) -> None:
    """A resumed run must share the checkpoint's classes, hold-out, label vectors, preprocessing
    and backbone; a checkpoint from before `interpolation` existed still matches bilinear."""
    module = DeviseModule.from_checkpoint(devise_run["ckpt"])
    assert module.devise is not None
    saved = dict(module.devise)
    module.check_resume(saved)  # the same data
    old = {**saved, "transform": {k: v for k, v in saved["transform"].items()
                                  if k != "interpolation"}}  # fmt: skip
    module.check_resume(old)
    seen = list(saved["seen"])
    seen[0] = not seen[0]
    other = {**saved, "seen": seen, "transform": {**saved["transform"], "resize_ratio": 0.5}}
    with pytest.raises(CheckpointError, match=r"hold-out classes \(checkpoint .*; preprocessing"):
        module.check_resume(other)
    vectors = torch.as_tensor(saved["class_vectors"]) + 1.0
    with pytest.raises(CheckpointError, match="the classes' word vectors"):
        module.check_resume({**saved, "class_vectors": vectors})
    # The same weights by another name, the same weights file by another path: not a difference.
    weights_file = devise_run["dir"] / "w.pt"
    weights_file.write_bytes(b"weights")
    backbone = {**saved["backbone"], "weights": "DEFAULT", "weights_path": str(weights_file)}
    module.info = {**saved, "backbone": backbone}
    same = {**backbone, "weights": "IMAGENET1K_V1",
            "weights_path": str(devise_run["dir"] / "." / "w.pt")}  # fmt: skip
    module.check_resume({**saved, "backbone": same})
    with pytest.raises(CheckpointError, match=r"backbone \(checkpoint"):
        module.check_resume({**saved, "backbone": {**same, "weights": None}})


def test_a_datamodule_of_another_model_is_one_error_line() -> None:
    """The sizes protocol names what the model needs instead of a KeyError deep inside."""
    from types import SimpleNamespace

    from lit_common.sizes import DataMismatchError

    module = DeviseModule(net={"backbone": "cifar_resnet20"})
    translation_data = SimpleNamespace(model_info=lambda: {"src_vocab": [], "tgt_vocab": []})
    module._trainer = SimpleNamespace(datamodule=translation_data)  # type: ignore[assignment]
    with pytest.raises(DataMismatchError, match=r"lacks \['class_ids', 'class_names'"):
        module.configure_model()
    module._trainer = SimpleNamespace(datamodule=object())  # type: ignore[assignment]
    with pytest.raises(DataMismatchError, match="builds its network from a datamodule's"):
        module.configure_model()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d["transform"].pop("mean"), "its preprocessing: 'mean' is missing"),
        (lambda d: d["transform"].pop("image_size"), "its preprocessing: 'image_size' is missing"),
        (lambda d: d.pop("transform"), "its preprocessing ('transform') is missing"),
        (lambda d: d["transform"].update(std=[0.2, 0.0, 0.2]), "transform.std=0.0 is out of range"),
        (lambda d: d["transform"].update(mean=[0.5, 0.5]), "'mean' should be 1 or 3 numbers"),
        (
            lambda d: d["transform"].update(interpolation="lanczos"),
            "interpolation='lanczos' unknown",
        ),
        (
            lambda d: d["class_vectors"].__setitem__((0, 0), float("nan")),
            "class vectors contain NaN",
        ),
        (lambda d: d["seen"].pop(), "20 class ids, 20 names, 19 seen flags"),
        (lambda d: d["class_names"].pop(), "20 class ids, 19 names"),
    ],
)
def test_damaged_checkpoints_are_one_line_errors(
    tmp_path: Path, devise_run: dict[str, Any], damage: Any, message: str
) -> None:
    checkpoint = torch.load(devise_run["ckpt"], weights_only=True, map_location="cpu")
    damage(checkpoint["devise"])
    path = tmp_path / "damaged.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=re.escape(message)) as caught:
        DeviseModule.from_checkpoint(path)
    assert "is damaged" in str(caught.value) and "\n" not in str(caught.value)
