"""DeepLabv3+ with a MobileNetV3-Large encoder (seed 001): conventional and lite variants."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v3_large

from models.checkpoint import Trusted, load_state_dict_file
from models.fixture_weights import COMMITTED
from models.registry import InputSpec, ModelSpec, register

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# Fast-tier input size: big enough for ASPP rates 6/12/18 to see context at stride 16,
# small enough that seven exports per model finish in minutes on two cores.
FAST_INPUT_SIZE = 256


def _conv_bn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    padding = 0 if kernel == 1 else dilation
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPPPooling(nn.Module):
    """Image-level branch: global average, 1x1 conv, upsample back."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.project = _conv_bn_relu(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        y = self.project(x.mean(dim=(2, 3), keepdim=True))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3, image pooling; 1x1 projection."""

    def __init__(self, cin: int, cout: int = 256, rates: tuple[int, ...] = (6, 12, 18)) -> None:
        super().__init__()
        branches = [_conv_bn_relu(cin, cout, 1)]
        branches += [_conv_bn_relu(cin, cout, 3, dilation=r) for r in rates]
        branches.append(ASPPPooling(cin, cout))
        self.branches = nn.ModuleList(branches)
        self.project = _conv_bn_relu(cout * len(branches), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLabv3+ on MobileNetV3-Large features (output stride 16), logits at input size."""

    def __init__(self, num_classes: int, lite: bool) -> None:
        super().__init__()
        features = mobilenet_v3_large(weights=None, dilated=True).features
        # The lite variant drops the final 160->960 expansion layer.
        self.low_level = features[:4]
        self.high_level = features[4:16] if lite else features[4:]
        high_channels = 160 if lite else 960
        self.low_project = _conv_bn_relu(24, 48, 1)
        self.aspp = ASPP(high_channels, 256)
        self.decoder = nn.Sequential(
            _conv_bn_relu(256 + 48, 256, 3),
            _conv_bn_relu(256, 256, 3),
        )
        self.classifier = nn.Conv2d(256, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = image.shape[-2:]
        low = self.low_level(image)
        high = self.aspp(self.high_level(low))
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.decoder(torch.cat([high, self.low_project(low)], dim=1))
        return F.interpolate(self.classifier(x), size=size, mode="bilinear", align_corners=False)


def build_deeplabv3plus(num_classes: int, lite: bool, seed: int = 0) -> DeepLabV3Plus:
    """Seeded random init, eval mode."""
    torch.manual_seed(seed)
    return DeepLabV3Plus(num_classes=num_classes, lite=lite).eval()


def load_deeplabv3plus_checkpoint(model: nn.Module, path: Path,
                                  trusted: Trusted = frozenset()) -> nn.Module:
    """Load a state_dict (optionally under 'state_dict' or 'model', 'module.' prefixes).

    Files that need pickle load only when in `trusted` (--trust-checkpoint).
    """
    return load_state_dict_file(model, Path(path), trusted)


def preprocess_imagenet(images: np.ndarray) -> dict[str, np.ndarray]:
    """[0, 1] RGB NCHW -> ImageNet-normalised float32 NCHW under the input name 'image'."""
    x = (images.astype(np.float32) - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    return {"image": np.ascontiguousarray(x, dtype=np.float32)}


def _spec(name: str, num_classes: int, lite: bool, params: int, size: int, tier: str,
          description: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="deeplabv3plus",
        build=lambda: build_deeplabv3plus(num_classes, lite),
        inputs=(InputSpec("image", (1, 3, size, size)),),
        output_names=("logits",),
        task="semantic",
        num_classes=num_classes,
        expected_params=params,
        tier=tier,  # type: ignore[arg-type]
        load_checkpoint=load_deeplabv3plus_checkpoint,
        fixture_weights=COMMITTED[name],
        preprocess=preprocess_imagenet,
        description=description,
        weights_label=COMMITTED[name].label,
        rewrites=EXPORT_REWRITES,
    )


# TFLite export rewrites (models/export/rewrites.py): int8 MobileNetV3 runs on XNNPACK and
# the Edge TPU only with hard-swish as ops they have.
EXPORT_REWRITES = ("hardswish_as_mul_relu6",)


CONVENTIONAL = register(_spec(
    "deeplabv3plus_mnv3_conventional", 91, lite=False, params=11_745_643,
    size=FAST_INPUT_SIZE, tier="fast",
    description="DeepLabv3+, MobileNetV3-Large (all features, 160->960), 91 classes",
))
LITE = register(_spec(
    "deeplabv3plus_mnv3_lite", 21, lite=True, params=5_632_933,
    size=FAST_INPUT_SIZE, tier="fast",
    description="DeepLabv3+, MobileNetV3-Large without the last expansion, 21 classes",
))
# The lite model's int8 and Edge TPU files as MobileNetV3 is written (TFLite HARD_SWISH), beside
# the rewritten ones: the matrix shows in one run what the rewrite buys in speed and op coverage.
LITE_OFFICIAL = register(dataclasses.replace(
    LITE, name="deeplabv3plus_mnv3_lite_official", formats=("tflite_int8", "edgetpu"),
    rewrites=(), description=f"{LITE.description}; TFLite without export rewrites"))
