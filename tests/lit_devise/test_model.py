"""lit_devise/head.py, model.py, backbone.py, resnet_cifar.py: shapes, freezing, weights files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lit_devise.backbone import BackboneError, build_body
from lit_devise.head import ConcatPool, DeviseHead
from lit_devise.model import DeviseNet, DeviseNetConfig
from lit_devise.resnet_cifar import cifar_resnet20
from tests.conftest import SHARED_DATA


def test_concat_pool_is_max_then_mean() -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    out = ConcatPool()(x)
    assert out.shape == (2, 6)
    torch.testing.assert_close(out[:, :3], x.amax(dim=(2, 3)))
    torch.testing.assert_close(out[:, 3:], x.mean(dim=(2, 3)))


def test_head_is_the_lessons_layers() -> None:
    head = DeviseHead(14, 7, hidden=9, dropout_in=0.3, dropout_hidden=0.2)
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["BatchNorm1d", "Dropout", "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert head[1].p == 0.3 and head[5].p == 0.2 and head[2].out_features == 9
    assert head(torch.randn(5, 14)).shape == (5, 7)
    with pytest.raises(ValueError, match=r"dropout_in=1\.0"):
        DeviseHead(4, 2, dropout_in=1.0)


@pytest.mark.parametrize(("backbone", "channels"), [("resnet18", 512), ("cifar_resnet20", 64)])
def test_net_accepts_images_or_activations(backbone: str, channels: int) -> None:
    net = DeviseNet(DeviseNetConfig(backbone=backbone, hidden=16), out_dim=5).eval()
    images = torch.randn(3, 3, 32, 32)
    assert net.feature_dim == 2 * channels
    features = net.features(images)
    assert features.shape == (3, 2 * channels)
    torch.testing.assert_close(net(images), net(features))
    with pytest.raises(ValueError, match=rf"activations \(batch, {2 * channels}\)"):
        net(torch.randn(3, 7))


def test_frozen_backbone_keeps_weights_and_batchnorm_statistics() -> None:
    net = DeviseNet(DeviseNetConfig(backbone="resnet18", hidden=16), out_dim=5)
    net.train()
    assert not net.body.training and net.head.training
    assert not any(p.requires_grad for p in net.body.parameters())
    before = {k: v.clone() for k, v in net.body.state_dict().items()}
    net(torch.randn(4, 3, 32, 32)).sum().backward()
    after = net.body.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    tuned = DeviseNet(DeviseNetConfig(backbone="resnet18", hidden=16, freeze=False), out_dim=5)
    assert tuned.train().body.training and all(p.requires_grad for p in tuned.body.parameters())


def test_same_init_seed_same_backbone() -> None:
    a, _ = build_body("resnet18", init_seed=1)
    b, _ = build_body("resnet18", init_seed=1)
    c, _ = build_body("resnet18", init_seed=2)
    first = next(iter(a.parameters()))
    assert torch.equal(first, next(iter(b.parameters())))
    assert not torch.equal(first, next(iter(c.parameters())))


def test_other_torchvision_families_and_errors() -> None:
    body, channels = build_body("mobilenet_v3_small")
    assert channels == 576 and isinstance(body, nn.Module)
    with pytest.raises(BackboneError, match="backbone='resnet51' unknown"):
        build_body("resnet51")
    with pytest.raises(BackboneError, match="weights='NOPE'"):
        build_body("resnet18", weights="NOPE")
    with pytest.raises(BackboneError, match="cannot find the convolutional body"):
        build_body("vit_b_16")


def test_local_state_dict_with_module_prefix(tmp_path: Path) -> None:
    model = cifar_resnet20()
    path = tmp_path / "resnet20.th"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"best_prec1": 90.0, "state_dict": state}, path)
    body, _ = build_body("cifar_resnet20", weights_path=str(path), init_seed=99)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    body.eval()
    torch.testing.assert_close(body(x), model.features(x))
    with pytest.raises(BackboneError, match="does not fit the backbone"):
        build_body("resnet18", weights_path=str(path))
    (tmp_path / "broken.th").write_bytes(path.read_bytes()[:100])
    with pytest.raises(BackboneError, match="not a readable state dict"):
        build_body("cifar_resnet20", weights_path=str(tmp_path / "broken.th"))


@pytest.mark.realdata
def test_shared_cifar_resnet20_weights_load() -> None:
    path = SHARED_DATA / "weights" / "resnet20-12fca82f.th"
    if not path.is_file():
        pytest.skip("../shared/data/weights absent")
    body, channels = build_body("cifar_resnet20", weights_path=str(path))
    assert channels == 64
    # Trained weights: BatchNorm statistics are not the fresh (0, 1) ones.
    assert body[1].running_var.mean() != 1.0
