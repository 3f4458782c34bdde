"""SemiVL (Hoyer et al. 2023): MaskCLIP ViT-B/16 backbone + vision-language-guided decoder.

Our own pure-torch build of google-research/semivl (VOC experiment 40,
`vlm-vlg-aspp-s2p4-sk04-ftap-mcvitb`), see shared/design/models.md section 1. Parameter names
follow the official checkpoint (`backbone.*`, `decode_head.*`) so its weights load as they are.
Everything in the forward pass is plain linear/conv/matmul/softmax/resize with static shapes.
The forward pass follows the official operations; where litert-torch or the int8 quantiser
mishandle one, the step is a method of its own (`Up.repeat_skip`, `VLGHead.similarity`) that a
named export rewrite (`models/export/rewrites.py`) swaps while converting to TFLite.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import (
    Trusted,
    load_matching_state_dict,
    mark_source,
    read_checkpoint,
    read_checkpoint_file,
    unwrap_state_dict,
)
from models.fixture_weights import COMMITTED
from models.registry import InputSpec, ModelSpec, SlidingWindowInference, Tier, register

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# As written in the official model/text_embeddings.py (unspaced names, background first).
VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
PROMPT = "a photo of a {}"


@dataclass(frozen=True)
class SemiVLConfig:
    """Sizes of one SemiVL build; the defaults are the paper's VOC model."""

    img_size: int = 512
    patch: int = 16
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp: int = 3072
    # Blocks whose MaskCLIP "v" maps the decoder uses; the last entry must equal `depth`
    # and stands for the final projected embedding (as in the official out_indices).
    out_indices: tuple[int, ...] = (0, 4, 12)
    embed_dim: int = 512
    num_classes: int = 21
    channels: int = 128
    text_channels: int = 128
    decoder_layers: int = 2
    decoder_heads: int = 4
    pool_size: int = 4
    conv1_kernel: int = 7
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    up_channels: tuple[int, int] = (64, 32)
    skip_channels: tuple[int, int] = (32, 16)

    def __post_init__(self) -> None:
        if len(self.out_indices) != 3 or self.out_indices[-1] != self.depth:
            raise ValueError(f"out_indices must be (skip0, skip1, depth), got {self.out_indices}")
        if self.img_size % self.patch:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch {self.patch}")

    @property
    def grid(self) -> int:
        """Feature-map side at `img_size`."""
        return self.img_size // self.patch


FULL_CONFIG = SemiVLConfig()
# Fast CPU tier: the same code, narrower and shallower, 256 px (16x16 tokens, pooled to 4x4).
SMALL_CONFIG = SemiVLConfig(
    img_size=256,
    width=192,
    depth=4,
    heads=3,
    mlp=768,
    out_indices=(0, 2, 4),
    embed_dim=128,
    channels=64,
    text_channels=64,
    up_channels=(32, 16),
    skip_channels=(16, 8),
)


# --------------------------------------------------------------------------- building blocks


class SelfAttention(nn.Module):
    """Multi-head self-attention computed with plain matmuls.

    `attn` is an nn.MultiheadAttention only as a holder of the weights, so that names read
    `attn.attn.in_proj_weight` like the official (mmcv-wrapped) checkpoint; its fused fast
    path is not used because it does not export cleanly to every format.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn = nn.MultiheadAttention(width, heads, bias=True, batch_first=True)

    def _project(self, x: Tensor, index: int) -> Tensor:
        width = x.shape[-1]
        weight = self.attn.in_proj_weight[index * width : (index + 1) * width]
        bias = self.attn.in_proj_bias[index * width : (index + 1) * width]
        return F.linear(x, weight, bias)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        head_dim = width // self.heads

        def split(t: Tensor) -> Tensor:
            return t.reshape(batch, length, self.heads, head_dim).transpose(1, 2)

        q = split(self._project(x, 0)) * (head_dim**-0.5)
        k = split(self._project(x, 1))
        v = split(self._project(x, 2))
        attn = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, length, width)
        return self.attn.out_proj(out)

    def value(self, x: Tensor) -> Tensor:
        """MaskCLIP's attention-free path: out_proj(W_v x + b_v)."""
        return self.attn.out_proj(self._project(x, 2))


class FFN(nn.Module):
    """Linear-GELU-Linear; `layers.0.0` / `layers.1` mirror mmcv's FFN names."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(width, hidden), nn.GELU()), nn.Linear(hidden, width)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer (mmcv TransformerEncoderLayer names: ln1, attn, ln2, ffn)."""

    def __init__(self, width: int, heads: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width, eps=eps)
        self.attn = SelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width, eps=eps)
        self.ffn = FFN(width, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))

    def value_path(self, x: Tensor) -> Tensor:
        """MaskCLIP "v" map: the block with its attention replaced by the value projection."""
        v = self.attn.value(self.ln1(x)) + x
        return v + self.ffn(self.ln2(v))


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection; `projection` as in mmseg's PatchEmbed."""

    def __init__(self, patch: int, width: int) -> None:
        super().__init__()
        self.patch = patch
        self.projection = nn.Conv2d(3, width, patch, stride=patch, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # mmseg pads bottom/right ("corner") when the size is not a multiple of the patch.
        pad_h = -x.shape[-2] % self.patch
        pad_w = -x.shape[-1] % self.patch
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.projection(x)


def resize_pos_embed(pos_embed: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Bicubically resize (1, 1+g*g, C) position embeddings to a (h, w) token grid."""
    side = math.isqrt(pos_embed.shape[1] - 1)
    if side * side != pos_embed.shape[1] - 1:
        raise ValueError(f"pos_embed of shape {tuple(pos_embed.shape)} is not a square grid")
    if (side, side) == tuple(grid_hw):
        return pos_embed
    cls_pos, grid = pos_embed[:, :1], pos_embed[:, 1:]
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=grid_hw, mode="bicubic", align_corners=False)
    return torch.cat([cls_pos, grid.flatten(2).transpose(1, 2)], dim=1)


class MaskClipViT(nn.Module):
    """CLIP ViT returning MaskCLIP dense features (official `MaskClipVisionTransformer`)."""

    def __init__(self, cfg: SemiVLConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg.patch, cfg.width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid * cfg.grid + 1, cfg.width))
        self.ln0 = nn.LayerNorm(cfg.width, eps=1e-6)
        self.layers = nn.ModuleList(
            EncoderLayer(cfg.width, cfg.heads, cfg.mlp, eps=1e-6) for _ in range(cfg.depth)
        )
        self.ln1 = nn.LayerNorm(cfg.width, eps=1e-6)
        self.proj = nn.Conv2d(cfg.width, cfg.embed_dim, 1, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # Official random-init rule (mmseg ViT / timm "jax"): truncated normal 0.02.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if "ffn" in name:
                    nn.init.normal_(module.bias, std=1e-6)
                else:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in")

    def init_portable(self, seed: int = 0) -> MaskClipViT:
        """Re-draw every weight by the `_init_weights` rule from numpy's legacy RandomState.

        torch's own normal draws take a vectorised path on AVX2 CPUs and a scalar one without
        it, so a seeded torch init differs between machines; RandomState's stream is frozen.
        """
        rng = np.random.RandomState(seed)

        def draw(tensor: Tensor, std: float) -> None:
            values = np.clip(rng.standard_normal(tuple(tensor.shape)) * std, -2.0, 2.0)
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(values.astype(np.float32)))

        draw(self.pos_embed, 0.02)
        draw(self.cls_token, 0.02)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                draw(module.weight, 0.02)
                if "ffn" in name:
                    draw(module.bias, 1e-6)
                else:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv2d):
                draw(module.weight, math.sqrt(2.0 / module.weight[0].numel()))
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):  # its own rule: Xavier uniform
                bound = math.sqrt(6.0 / sum(module.in_proj_weight.shape))
                values = rng.uniform(-bound, bound, tuple(module.in_proj_weight.shape))
                with torch.no_grad():
                    module.in_proj_weight.copy_(torch.from_numpy(values.astype(np.float32)))
                nn.init.zeros_(module.in_proj_bias)
        return self

    def forward_features(
        self, image: Tensor, with_global: bool = False
    ) -> tuple[list[Tensor], Tensor | None]:
        """[v(skip0), v(skip1), normalised embedding] and, if asked, the global embedding."""
        batch = image.shape[0]
        x = self.patch_embed(image)
        grid_hw = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x], dim=1)
        x = self.ln0(x + resize_pos_embed(self.pos_embed, grid_hw))

        def to_map(tokens: Tensor) -> Tensor:
            return tokens[:, 1:].transpose(1, 2).reshape(batch, -1, grid_hw[0], grid_hw[1])

        skips = set(self.cfg.out_indices[:-1])
        last = len(self.layers) - 1
        features: list[Tensor] = []
        embedding: Tensor | None = None
        global_embedding: Tensor | None = None
        for i, layer in enumerate(self.layers):
            if i in skips:
                features.append(to_map(layer.value_path(x)))
            if i == last:
                # Official order: map layout, the 1x1 `proj` conv, divide by the channel norm.
                dense = self.proj(to_map(self.ln1(layer.value_path(x))))
                embedding = dense / dense.norm(dim=1, keepdim=True)
                if not with_global:
                    break  # the ordinary last-block output only feeds the global embedding
            x = layer(x)
        if with_global:
            cls = self.proj(self.ln1(x)[:, 0, :, None, None])[:, :, 0, 0]
            global_embedding = cls / cls.norm(dim=1, keepdim=True)
        assert embedding is not None
        return [*features, embedding], global_embedding

    def forward(self, image: Tensor) -> list[Tensor]:
        """[v(skip0), v(skip1), embedding], all at 1/patch resolution."""
        return self.forward_features(image)[0]


# --------------------------------------------------------------------------- decoder


def _gn(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(channels // 16, channels)  # the official head's rule


class ASPPPooling(nn.Module):
    """Image-pool branch of the ASPP."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gap = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels, 1, bias=False),
            _gn(channels),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        # As the official code: a bilinear resize of the 1x1 pool. Not an expand (the same
        # values): litert-torch 0.10.0 turns that into a BROADCAST_TO that fails to allocate
        # (pinned in tests/test_converter_canaries.py).
        return F.interpolate(self.gap(x), size=x.shape[-2:], mode="bilinear", align_corners=True)


class ASPPModule(nn.Module):
    """ASPP with GroupNorm and a residual connection, as in the official VLGHead."""

    def __init__(self, channels: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        branches: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), _gn(channels), nn.ReLU())
        ]
        for rate in rates:
            branches.append(
                nn.Sequential(
                    nn.Conv2d(channels, channels, 3, padding=rate, dilation=rate, bias=False),
                    _gn(channels),
                    nn.ReLU(),
                )
            )
        branches.append(ASPPPooling(channels))
        self.aspp_convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * channels, channels, 1, bias=False), _gn(channels), nn.ReLU()
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.project(torch.cat([branch(x) for branch in self.aspp_convs], dim=1))


class SemanticTransformer(nn.Module):
    """Attention across the classes at every pooled position, guided by text features."""

    def __init__(self, channels: int, text_channels: int, heads: int, pool: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(pool)
        width = channels + text_channels
        self.transformer = EncoderLayer(width, heads, 4 * channels, eps=1e-5)

    def forward(self, x: Tensor, text: Tensor, batch: int) -> Tensor:
        """x: (B*N, c, H, W) in class-major order per image; text: (N, t)."""
        bn, channels, height, width = x.shape
        n = bn // batch
        pooled = self.pool(x)
        ph, pw = pooled.shape[-2:]
        # (B*N, c, ph, pw) -> (B*ph*pw, N, c): positions become the batch, classes the sequence.
        tokens = pooled.reshape(batch, n, channels, ph * pw).permute(0, 3, 1, 2)
        tokens = tokens.reshape(batch * ph * pw, n, channels)
        text = text.unsqueeze(0).expand(batch * ph * pw, -1, -1)
        out = self.transformer(torch.cat([tokens, text], dim=-1))[..., :channels]
        out = out.reshape(batch, ph * pw, n, channels).permute(0, 2, 3, 1)
        out = out.reshape(bn, channels, ph, pw)
        out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=True)
        return x + out


class Up(nn.Module):
    """Transposed-conv upsampling, concat of a (per-image) skip, two conv-GN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels - skip_channels, 2, stride=2)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            _gn(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _gn(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        n = x.shape[0] // skip.shape[0]
        skip = F.interpolate(skip, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(torch.cat([x, self.repeat_skip(skip, n)], dim=1))

    def repeat_skip(self, skip: Tensor, n: int) -> Tensor:
        """(B, C, H, W) → (B*n, C, H, W), one copy per class map, image-major.

        The official `einops.repeat(skip, "b c h w -> (b n) c h w")`, which einops computes
        as this 5-D expand and reshape.
        """
        batch = skip.shape[0]
        return skip.unsqueeze(1).expand(-1, n, -1, -1, -1).reshape(batch * n, *skip.shape[1:])


class VLGHead(nn.Module):
    """Vision-language-guided decoder (official `VLGHead`, VOC configuration)."""

    def __init__(self, cfg: SemiVLConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.conv1 = nn.Conv2d(1, c, cfg.conv1_kernel, padding=(cfg.conv1_kernel - 1) // 2)
        self.aspp = ASPPModule(c, cfg.aspp_rates)
        self.layers = nn.ModuleList(
            SemanticTransformer(c, cfg.text_channels, cfg.decoder_heads, cfg.pool_size)
            for _ in range(cfg.decoder_layers)
        )
        self.text_proj = nn.Sequential(nn.Linear(cfg.embed_dim, cfg.text_channels), nn.ReLU())
        self.skip_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cfg.width, sc, 3, padding=1), nn.ReLU())
            for sc in cfg.skip_channels
        )
        self.up1 = Up(c, cfg.up_channels[0], cfg.skip_channels[0])
        self.up2 = Up(cfg.up_channels[0], cfg.up_channels[1], cfg.skip_channels[1])
        self.head = nn.Conv2d(cfg.up_channels[1], 1, 3, padding=1)

    def forward(self, features: list[Tensor], text: Tensor) -> Tensor:
        """features: [v(skip0), v(skip1), embedding (B, D, h, w)]; text: (N, D) → (B, N, 4h, 4w)."""
        batch, _, height, width = features[-1].shape
        n = text.shape[0]
        similarity = self.similarity(features[-1], text)  # (B, N, h, w)
        x = self.conv1(similarity.reshape(batch * n, 1, height, width))
        x = self.aspp(x)
        # The official head projects the normalised text repeated per image; one copy serves all.
        text_feats = self.text_proj(F.normalize(text, dim=-1))
        for layer in self.layers:
            x = layer(x, text_feats, batch)
        # Deeper skip first, as the official head reverses the pyramid.
        skips = [proj(f) for proj, f in zip(self.skip_proj, features[-2::-1], strict=True)]
        x = self.up1(x, skips[0])
        x = self.up2(x, skips[1])
        x = self.head(x)
        return x.reshape(batch, n, x.shape[-2], x.shape[-1])

    def similarity(self, embedding: Tensor, text: Tensor) -> Tensor:
        """Cosine similarity of each pixel's embedding (B, D, h, w) with each class (N, D).

        Official: normalise over channels in map layout, repeat the text per image, einsum.
        """
        image = F.normalize(embedding, dim=1)
        text = F.normalize(text.repeat(embedding.shape[0], 1, 1), dim=-1)
        return torch.einsum("bchw,bnc->bnhw", image, text)


class SemiVL(nn.Module):
    """Image (B, 3, H, W), ImageNet-normalised → logits (B, C, H, W).

    The text embeddings are a non-persistent buffer: an input of the decoder, not a weight,
    and kept out of the state dict so that it matches the official checkpoint's keys.
    """

    def __init__(self, cfg: SemiVLConfig, text_embeddings: Tensor) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = MaskClipViT(cfg)
        self.decode_head = VLGHead(cfg)
        self.register_buffer("text_embeddings", torch.empty(0), persistent=False)
        self.set_text_embeddings(text_embeddings)

    def set_text_embeddings(self, text_embeddings: Tensor | np.ndarray) -> None:
        """Replace the (num_classes, embed_dim) class embeddings."""
        emb = torch.as_tensor(np.asarray(text_embeddings), dtype=torch.float32)
        expected = (self.cfg.num_classes, self.cfg.embed_dim)
        if tuple(emb.shape) != expected:
            raise ValueError(f"text embeddings of shape {tuple(emb.shape)}, expected {expected}")
        self.text_embeddings = emb.to(self.text_embeddings.device).clone()

    def forward(self, image: Tensor) -> Tensor:
        logits = self.decode_head(self.backbone(image), self.text_embeddings)
        size = self.cfg.img_size
        # Official test path: to the configured square size, then to the input size.
        logits = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
        if tuple(image.shape[-2:]) != (size, size):
            logits = F.interpolate(
                logits, size=image.shape[-2:], mode="bilinear", align_corners=False
            )
        return logits


# --------------------------------------------------------------------------- text embeddings


@functools.lru_cache(maxsize=4)
def _clip_text_embeddings(class_names: tuple[str, ...], seed: int) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import open_clip
    from open_clip.model import _build_text_tower

    cfg = open_clip.get_model_config("ViT-B-16-quickgelu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # Text tower only: the vision tower would double the build time for nothing.
        tower = _build_text_tower(cfg["embed_dim"], cfg["text_cfg"], quick_gelu=cfg["quick_gelu"])
    tokens = open_clip.get_tokenizer("ViT-B-16-quickgelu")([PROMPT.format(c) for c in class_names])
    with torch.no_grad():
        emb = tower.eval()(tokens)
    emb = F.normalize(emb, dim=-1)
    # The official voc12_wbg_single.npy is stored in fp16.
    return emb.half().float().numpy()


def clip_text_embeddings(class_names: tuple[str, ...] = VOC_CLASSES, seed: int = 0) -> np.ndarray:
    """(C, 512) L2-normalised embeddings of "a photo of a {c}" from open_clip's ViT-B-16-quickgelu
    text tower with seeded random weights (no pretrained weights can be downloaded here)."""
    return _clip_text_embeddings(tuple(class_names), seed).copy()


def seeded_text_embeddings(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
    """(C, dim) L2-normalised Gaussian vectors: the small config's stand-in for CLIP text.

    Drawn by numpy's frozen RandomState: torch's draws differ in the last bits between CPUs
    with and without AVX2. (The semivl_small fixture uses the committed vectors it was trained
    with, fixtures/weights/semivl_small.text.npy.)
    """
    vectors = np.random.RandomState(seed).standard_normal((num_classes, dim))
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def load_text_embeddings(path: str | Path, num_classes: int = 21, dim: int = 512) -> np.ndarray:
    """Read a (num_classes, dim) `.npy` (any float dtype) as float32."""
    try:
        emb = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read text embeddings {path}: {err}") from err
    if emb.shape != (num_classes, dim) or not np.issubdtype(emb.dtype, np.floating):
        raise ValueError(
            f"text embeddings {path}: shape {emb.shape} dtype {emb.dtype} found, "
            f"expected ({num_classes}, {dim}) float (one row per class, background first)"
        )
    return emb.astype(np.float32)


# --------------------------------------------------------------------------- build / weights


def build_semivl(
    cfg: SemiVLConfig = FULL_CONFIG, text_embeddings: np.ndarray | None = None, seed: int = 0
) -> SemiVL:
    """Seeded random SemiVL in eval mode.

    Default text embeddings (fixed, whatever `seed`, since they stand for the class names and
    are not in checkpoints): open_clip ViT-B-16-quickgelu text features of the VOC prompts
    when embed_dim is 512, else `seeded_text_embeddings`.
    """
    if text_embeddings is None:
        if cfg.embed_dim == 512 and cfg.num_classes == len(VOC_CLASSES):
            text_embeddings = clip_text_embeddings(VOC_CLASSES)
        else:
            text_embeddings = seeded_text_embeddings(cfg.num_classes, cfg.embed_dim)
    torch.manual_seed(seed)
    return SemiVL(cfg, torch.from_numpy(text_embeddings)).eval()


def _fit_pos_embed(state: dict[str, Tensor], key: str, backbone: MaskClipViT) -> None:
    pos = state.get(key)
    if pos is not None and pos.ndim == 3 and pos.shape[1] != backbone.pos_embed.shape[1]:
        grid = backbone.cfg.grid
        state[key] = resize_pos_embed(pos.float(), (grid, grid))


def load_semivl_checkpoint(model: SemiVL, path: str | Path,
                           trusted: Trusted = frozenset()) -> SemiVL:
    """Load an official SemiVL checkpoint ({'model': {'module.backbone...'}}) or our state_dict.

    `clip_encoder.*` (the frozen training-time teacher) is dropped; everything else must match.
    Files that need pickle load only when in `trusted` (--trust-checkpoint).
    """
    raw, unpickled = read_checkpoint_file(Path(path), trusted)
    state = unwrap_state_dict(raw)
    state = {k: v for k, v in state.items() if not k.startswith("clip_encoder.")}
    _fit_pos_embed(state, "backbone.pos_embed", model.backbone)
    load_matching_state_dict(model, state, str(path))
    return mark_source(model, path, unpickled)


_CLIP_TOP = {
    "conv1.weight": "patch_embed.projection.weight",
    "class_embedding": "cls_token",
    "positional_embedding": "pos_embed",
    "ln_pre.weight": "ln0.weight",
    "ln_pre.bias": "ln0.bias",
    "ln_post.weight": "ln1.weight",
    "ln_post.bias": "ln1.bias",
    "proj": "proj.weight",
}
_CLIP_BLOCK = {
    "ln_1": "ln1",
    "ln_2": "ln2",
    "attn.in_proj_weight": "attn.attn.in_proj_weight",
    "attn.in_proj_bias": "attn.attn.in_proj_bias",
    "attn.out_proj": "attn.attn.out_proj",
    "mlp.c_fc": "ffn.layers.0.0",
    "mlp.c_proj": "ffn.layers.1",
}
_BLOCK_KEY = re.compile(r"transformer\.resblocks\.(\d+)\.(.+?)(\.weight|\.bias)?")


def clip_visual_to_backbone(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename (and reshape) CLIP/open_clip visual weights to MaskClipViT names.

    Keys that are already MaskClipViT names pass through, so our own backbone state dict is
    accepted as well. Unknown keys pass through unchanged (and are reported on loading).
    """
    if any(k.startswith("visual.") for k in state):
        # A whole CLIP model: its text tower also has transformer.resblocks.*; keep the image side.
        state = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in _CLIP_TOP:
            new = _CLIP_TOP[key]
            if key == "class_embedding":
                value = value.reshape(1, 1, -1)
            elif key == "positional_embedding":
                value = value.unsqueeze(0)
            elif key == "proj":
                value = value.t()
        elif match := _BLOCK_KEY.fullmatch(key):
            index, name, suffix = match.group(1), match.group(2), match.group(3) or ""
            new = f"layers.{index}.{_CLIP_BLOCK.get(name, name)}{suffix}"
        else:
            new = key
        if new == "proj.weight" and value.ndim == 2:
            value = value[:, :, None, None]  # clip2mmseg files keep the transposed 2-D matrix
        out[new] = value.float()
    return out


def load_clip_visual_weights(
    backbone: MaskClipViT, state_dict_or_path: Mapping[str, Tensor] | str | Path
) -> MaskClipViT:
    """Initialise the backbone from CLIP ViT visual weights (OpenAI or open_clip layout)."""
    if isinstance(state_dict_or_path, Mapping):
        source, raw = "CLIP state dict", unwrap_state_dict(state_dict_or_path)
    else:
        source = str(state_dict_or_path)
        # torch.load hands OpenAI's TorchScript CLIP files to torch.jit.load: a module, unwrapped.
        raw = unwrap_state_dict(read_checkpoint(Path(state_dict_or_path)))
    state = clip_visual_to_backbone({k.removeprefix("backbone."): v for k, v in raw.items()})
    _fit_pos_embed(state, "pos_embed", backbone)
    load_matching_state_dict(backbone, state, source)
    return backbone


def preprocess(images_rgb01: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 3, H, W) RGB in [0, 1] → {"image": ImageNet-normalised float32 NCHW}."""
    images = np.asarray(images_rgb01, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images, got shape {images.shape}")
    mean = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, np.float32)[:, None, None]
    return {"image": np.ascontiguousarray((images - mean) / std)}


# --------------------------------------------------------------------------- registry


def _paper_inference(cfg: SemiVLConfig) -> SlidingWindowInference:
    # Paper: short side 512, 512 windows, stride 426; scaled with the config's input size.
    stride = round(cfg.img_size * 426 / 512)
    return SlidingWindowInference(short_side=cfg.img_size, window=cfg.img_size, stride=stride)


SEMANTIC_FORMATS = ("torchscript", "torchscript_lite", "onnx", "tflite_fp32", "tflite_int8")
# Mixed-precision int8 recipes found by --int8-repair for the committed fixture weights.
INT8_RECIPES = Path(__file__).resolve().parents[1] / "fixtures" / "int8_recipes"


def _spec(name: str, cfg: SemiVLConfig, tier: Tier, expected: int,
          formats: tuple[str, ...] = SEMANTIC_FORMATS) -> ModelSpec:
    recipe = INT8_RECIPES / f"{name}.json"
    return ModelSpec(
        name=name,
        family="semivl",
        build=functools.partial(build_semivl, cfg),
        inputs=(InputSpec("image", (1, 3, cfg.img_size, cfg.img_size)),),
        output_names=("logits",),
        task="semantic",
        num_classes=cfg.num_classes,
        expected_params=expected,
        formats=formats,
        tier=tier,
        load_checkpoint=load_semivl_checkpoint,
        fixture_weights=COMMITTED[name],
        preprocess=preprocess,
        rewrites=EXPORT_REWRITES,
        description=f"SemiVL (MaskCLIP ViT + VLG decoder), {cfg.depth}x{cfg.width}, "
        f"{cfg.img_size} px, VOC {cfg.num_classes} classes",
        weights_label=COMMITTED[name].label,
        sliding_window=_paper_inference(cfg),
        int8_recipe=recipe if recipe.is_file() else None,
    )


# Converter workarounds applied when exporting (models/export/rewrites.py; TFLite only).
EXPORT_REWRITES = ("up_skip_repeat_3d", "similarity_as_linear")

# int8 fails its budget on SemiVL small: it also gets int16 activations everywhere and the
# mixed recipe the repair search found.
SEMIVL_SMALL = register(_spec("semivl_small", SMALL_CONFIG, "fast", 2_510_065,
                              formats=(*SEMANTIC_FORMATS, "tflite_w8a16", "tflite_int8_mixed")))
# The same model and weights converted as the official code is written, no rewrites: the
# matrix shows what the rewrites buy, and the day a converter is fixed this form passes.
SEMIVL_SMALL_OFFICIAL = register(dataclasses.replace(
    SEMIVL_SMALL, name="semivl_small_official", formats=("tflite_fp32", "tflite_int8"),
    rewrites=(), int8_recipe=None,
    description=f"{SEMIVL_SMALL.description}; TFLite without export rewrites"))
# Slow tier: the paper's ViT-B/16 at 512 px; committed decoder over a portable seeded backbone.
SEMIVL_VITB16 = register(_spec("semivl_vitb16", FULL_CONFIG, "slow", 89_045_729))
