"""Image preprocessing for DeViSE: the evaluation transform (resize, centre crop, normalise) that
precompute, validation, indexing and search share, and the training augmentation.

Both are built from plain settings (``image_size``, ``resize_ratio``, ``mean``, ``std``,
``interpolation``) that the checkpoint keeps, so ``lit_devise.index`` preprocesses images exactly
as training did. A setting the config leaves null comes from the backbone's torchvision weights
(``weights.transforms()``: each model family has its own crop, resize and interpolation), else
from ImageNet's usual values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchvision import transforms as T

from lit_common.errors import InputError, check_choice

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = {
    "nearest": T.InterpolationMode.NEAREST,
    "bilinear": T.InterpolationMode.BILINEAR,
    "bicubic": T.InterpolationMode.BICUBIC,
}


def eval_transform(
    image_size: int,
    resize_ratio: float,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str = "bilinear",
) -> T.Compose:
    """Resize the short side to ``image_size / resize_ratio``, centre-crop, normalise."""
    return T.Compose(
        [
            T.Resize(round(image_size / resize_ratio), INTERPOLATIONS[interpolation]),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(list(mean), list(std)),
        ]
    )


def train_transform(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    crop_scale: Sequence[float] = (0.35, 1.0),
    hflip: bool = True,
    color_jitter: float = 0.0,
    interpolation: str = "bilinear",
) -> T.Compose:
    """Random resized crop of ``crop_scale`` of the image, optional horizontal flip and colour
    jitter (brightness, contrast and saturation), normalise."""
    crop = T.RandomResizedCrop(
        image_size,
        scale=(crop_scale[0], crop_scale[1]),
        interpolation=INTERPOLATIONS[interpolation],
    )
    steps: list[Any] = [crop]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter:
        j = float(color_jitter)
        steps.append(T.ColorJitter(brightness=j, contrast=j, saturation=j))
    return T.Compose([*steps, T.ToTensor(), T.Normalize(list(mean), list(std))])


def canonical_weights(backbone: str, weights: str | None) -> str | None:
    """torchvision's full name of ``weights`` ("DEFAULT" and "IMAGENET1K_V2" of resnet50 are both
    "ResNet50_Weights.IMAGENET1K_V2"); the name as given when torchvision does not know it."""
    if not weights:
        return None
    from torchvision.models import get_model_weights

    try:
        return str(get_model_weights(backbone).verify(weights))
    except (ValueError, KeyError, TypeError):
        return weights


def weights_preprocessing(backbone: str, weights: str | None) -> dict[str, Any]:
    """``image_size``, ``resize_ratio``, ``mean``, ``std`` and ``interpolation`` of torchvision
    weights' own ``transforms()`` (e.g. ResNet-50 ``DEFAULT``: crop 224 of a 232 resize;
    EfficientNet-B3: 300 of 320, bicubic); ``{}`` without torchvision weights. Reads metadata
    only: nothing is downloaded."""
    if not weights:
        return {}
    from torchvision.models import get_model_weights

    try:  # verify() takes "DEFAULT", "IMAGENET1K_V2" and "ResNet50_Weights.IMAGENET1K_V2"
        chosen = get_model_weights(backbone).verify(weights)
    except (ValueError, KeyError, TypeError):
        return {}  # an unknown name: the backbone reports it with the valid choices
    preset = chosen.transforms()
    crop, resize = preset.crop_size[0], preset.resize_size[0]
    return {
        "image_size": int(crop),
        "resize_ratio": crop / resize,
        "mean": [float(m) for m in preset.mean],
        "std": [float(s) for s in preset.std],
        "interpolation": preset.interpolation.value,
    }


def resolve_settings(
    backbone: dict[str, Any],
    image_size: int | None = None,
    resize_ratio: float | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    interpolation: str | None = None,
) -> dict[str, Any]:
    """The evaluation transform's settings: each one the config gives, else the backbone
    weights' own, else ImageNet's usual (224, 0.875, ImageNet mean and std, bilinear)."""
    given = {"image_size": image_size, "resize_ratio": resize_ratio, "mean": mean, "std": std,
             "interpolation": interpolation}  # fmt: skip
    defaults = {"image_size": 224, "resize_ratio": 0.875, "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD), "interpolation": "bilinear"}  # fmt: skip
    preset = weights_preprocessing(backbone.get("backbone", ""), backbone.get("weights"))
    settings = {k: given[k] if given[k] is not None else preset.get(k, defaults[k]) for k in given}
    settings["mean"], settings["std"] = list(settings["mean"]), list(settings["std"])
    check_choice("interpolation", settings["interpolation"], INTERPOLATIONS)
    if not (isinstance(settings["image_size"], int) and settings["image_size"] >= 8):
        raise InputError(f"image_size={settings['image_size']!r}: expected an int >= 8")
    if not 0 < settings["resize_ratio"] <= 1:
        raise InputError(f"resize_ratio={settings['resize_ratio']}: expected 0 < ratio <= 1")
    return settings
