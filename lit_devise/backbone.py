"""A convolutional body by name: any torchvision classifier (or the CIFAR ResNet-20) minus its
pooling and classifier, with weights from torchvision's weights API or a local state-dict file.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from lit_common.errors import InputError
from lit_devise.resnet_cifar import CifarResNet, cifar_resnet20

LOCAL_BACKBONES = {"cifar_resnet20": cifar_resnet20}


class BackboneError(InputError):
    """A backbone name, weights name or weights file that cannot be used."""


def _torchvision_classifier(name: str, weights: str | None) -> nn.Module:
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        resnets = [n for n in available if re.fullmatch(r"resnet\d+", n)]
        raise BackboneError(
            f"backbone={name!r} unknown; valid: {sorted(LOCAL_BACKBONES)} or a torchvision "
            f"classifier such as {resnets} (torchvision.models.list_models())"
        )
    try:
        return torchvision.models.get_model(name, weights=weights)
    except (ValueError, KeyError) as err:
        raise BackboneError(f"weights={weights!r} for {name}: {err}") from None
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        raise BackboneError(
            f"could not get weights={weights!r} for {name} ({err}); torchvision downloads them "
            "into ~/.cache/torch on first use: run once with network, or set weights=null "
            "(random init) or weights_path=<local state dict>"
        ) from None


def load_state_dict_file(model: nn.Module, path: str | Path) -> None:
    """Load a ``torch.save``d state dict (optionally under ``state_dict``, ``module.``-prefixed)."""
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"weights_path {str(path)!r} does not exist")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BackboneError(f"{path} is not a readable state dict ({err})") from None
    if isinstance(saved, dict) and isinstance(saved.get("state_dict"), dict):
        saved = saved["state_dict"]
    if not isinstance(saved, dict):
        raise BackboneError(f"{path} holds a {type(saved).__name__}, not a state dict")
    state = {k.removeprefix("module."): v for k, v in saved.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise BackboneError(
            f"{path} does not fit the backbone {type(model).__name__}: {str(err)[:500]}"
        ) from None


def cut_body(model: nn.Module) -> nn.Module:
    """The layers before global pooling: ``features`` where a model has it, else the children
    up to ``avgpool`` (ResNet, ResNeXt, Wide ResNet, RegNet)."""
    if isinstance(model, CifarResNet):
        return nn.Sequential(
            model.conv1, model.bn1, nn.ReLU(), model.layer1, model.layer2, model.layer3
        )
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        if type(model).__name__ == "DenseNet":  # its forward applies the last ReLU itself
            return nn.Sequential(features, nn.ReLU())
        return features
    names = [name for name, _ in model.named_children()]
    if "avgpool" in names and "fc" in names:
        return nn.Sequential(*list(model.children())[: names.index("avgpool")])
    raise BackboneError(
        f"cannot find the convolutional body of {type(model).__name__}: supported are models with "
        "a `features` module (VGG, DenseNet, MobileNet, EfficientNet, ConvNeXt, ...) or "
        "`avgpool` + `fc` children (ResNet, ResNeXt, Wide ResNet, RegNet)"
    )


def feature_channels(body: nn.Module, image_size: int = 64) -> int:
    """Channels of the body's output map, from one dummy forward pass."""
    was_training = body.training
    body.eval()
    with torch.no_grad():
        out = body(torch.zeros(1, 3, image_size, image_size))
    body.train(was_training)
    if out.dim() != 4:
        raise BackboneError(
            f"the backbone body returns shape {tuple(out.shape)}, not a feature map"
        )
    return int(out.size(1))


def build_body(
    name: str,
    weights: str | None = None,
    weights_path: str | Path | None = None,
    init_seed: int = 0,
) -> tuple[nn.Module, int]:
    """(body, channels) of backbone ``name``; ``weights`` is a torchvision weights name such as
    ``DEFAULT`` or ``IMAGENET1K_V2``; ``weights_path`` a local state dict of the whole classifier.

    Random initialisation uses ``init_seed`` (the global RNG is left as it was), so the backbone
    that precomputes activations and the model's own backbone are the same network even without
    pretrained weights.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if name in LOCAL_BACKBONES:
            if weights:
                raise BackboneError(f"{name} has no torchvision weights; use weights_path=<file>")
            model = LOCAL_BACKBONES[name]()
        else:
            model = _torchvision_classifier(name, weights)
    if weights_path:
        load_state_dict_file(model, weights_path)
    body = cut_body(model)
    return body, feature_channels(body)
