"""Pictures for the HTML report: mask overlays (Pillow), compressed into thumbnails.

Pillow is imported inside the functions: on a Raspberry Pi verifying a bundle it may be
absent, and the report plugin must still load (`can_draw` tells). Panels are downscaled to
at most `max_side` pixels and re-encoded as WebP so that the report stays small. The latency
charts are SVG written by conformance/report_html.py.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image as PILImage

_CAPTION_HEIGHT = 14
_GAP = 4
_REF_COLOUR = np.array([0, 200, 0], dtype=np.float32)  # PyTorch mask: green
_GOT_COLOUR = np.array([230, 0, 200], dtype=np.float32)  # exported mask: magenta


def can_draw() -> bool:
    """True when Pillow is importable (mask overlays and thumbnails)."""
    return importlib.util.find_spec("PIL") is not None


def voc_palette(num_entries: int = 256) -> np.ndarray:
    """The Pascal VOC colour map, (num_entries, 3) uint8; entry 255 is the ignore colour."""
    index = np.arange(num_entries)
    palette = np.zeros((num_entries, 3), dtype=np.uint8)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= (((index >> (3 * bit + channel)) & 1) << (7 - bit)).astype(
                np.uint8)
    return palette


def segmentation_overlay(
    image_rgb_uint8: np.ndarray,
    ref_labels: np.ndarray,
    got_labels: np.ndarray,
    num_classes: int,
    *,
    max_side: int = 256,
) -> bytes:
    """Input | PyTorch prediction | exported prediction | disagreement map, as one PNG."""
    ref = _as_labels(ref_labels, num_classes)
    got = _as_labels(got_labels, num_classes)
    if ref.shape != got.shape:
        raise ValueError(f"label maps differ in shape: {ref.shape} vs {got.shape}")
    size = _panel_size(ref.shape, max_side)
    image = _resize_rgb(_as_rgb(image_rgb_uint8), size).astype(np.float32)
    ref_small = _resize_labels(ref, size)
    got_small = _resize_labels(got, size)
    palette = voc_palette().astype(np.float32)

    def blended(labels: np.ndarray) -> np.ndarray:
        # Mostly class colour, a little image so that boundaries can be related to content.
        return 0.65 * palette[labels] + 0.35 * image

    differ = ref != got  # counted at full resolution; the panel is only a picture
    differ_small = ref_small != got_small
    disagreement = 0.35 * image.mean(axis=2, keepdims=True).repeat(3, axis=2)
    disagreement[differ_small] = (255, 0, 0)
    panels = [
        ("input", image),
        ("PyTorch", blended(ref_small)),
        ("exported", blended(got_small)),
        (f"differ {100.0 * differ.mean():.1f}%", disagreement),
    ]
    return _png(_side_by_side(panels))


def prompt_mask_overlay(
    image: np.ndarray,
    prompt: Sequence[float] | np.ndarray,
    ref_mask: np.ndarray | None,
    got_mask: np.ndarray | None,
    *,
    max_side: int = 256,
) -> bytes:
    """Prompt on the image, PyTorch mask (green), exported mask (magenta), overlap, one PNG.

    `prompt` in image pixels: (x, y) point, (x0, y0, x1, y1) box, or (N, 2) points /
    (N, 4) boxes. A missing mask (None) is drawn as an empty panel. In the overlap panel
    white is both masks, green PyTorch only, magenta exported only.
    """
    from PIL import Image, ImageDraw

    rgb = _as_rgb(image)
    size = _panel_size(rgb.shape[:2], max_side)
    base = _resize_rgb(rgb, size).astype(np.float32)
    ref = _resize_mask(ref_mask, size)
    got = _resize_mask(got_mask, size)

    def tinted(mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
        out = base.copy()
        out[mask] = 0.45 * out[mask] + 0.55 * colour
        return out

    overlap = 0.35 * base.mean(axis=2, keepdims=True).repeat(3, axis=2)
    overlap[ref & ~got] = _REF_COLOUR
    overlap[got & ~ref] = _GOT_COLOUR
    overlap[ref & got] = (255, 255, 255)
    union = int((ref | got).sum())
    iou = (ref & got).sum() / union if union else float("nan")
    panels = [
        ("prompt", base),
        ("PyTorch" if ref_mask is not None else "PyTorch: no mask", tinted(ref, _REF_COLOUR)),
        ("exported" if got_mask is not None else "exported: no mask", tinted(got, _GOT_COLOUR)),
        (f"IoU {iou:.3f}", overlap),
    ]
    scale = (size[1] / rgb.shape[1], size[0] / rgb.shape[0])
    pictures = []
    for caption, pixels in panels:
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        _draw_prompt(ImageDraw.Draw(picture), prompt, scale)
        pictures.append((caption, picture))
    return _png(_side_by_side(pictures))


def thumbnail(png: bytes, *, max_width: int = 640, quality: int = 70) -> tuple[str, bytes]:
    """(MIME type, bytes) of a figure re-encoded for the report: lossy WebP, else JPEG.

    A four-panel overlay is ~100-200 kB as PNG and ~15-30 kB as WebP at this quality; the class
    colours stay distinguishable, and the counts in the captions come from full resolution.
    """
    from PIL import Image, features

    picture = Image.open(io.BytesIO(png)).convert("RGB")
    if picture.width > max_width:
        height = max(1, round(picture.height * max_width / picture.width))
        picture = picture.resize((max_width, height), Image.LANCZOS)
    buffer = io.BytesIO()
    if features.check("webp"):
        picture.save(buffer, format="WEBP", quality=quality, method=4)
        return "image/webp", buffer.getvalue()
    picture.save(buffer, format="JPEG", quality=quality + 10, optimize=True)
    return "image/jpeg", buffer.getvalue()


def _as_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected an (H, W) label map, got shape {labels.shape}")
    labels = labels.astype(np.int64)
    # Ignore (255) and out-of-range labels share the VOC ignore colour.
    return np.where((labels >= 0) & (labels < num_classes), labels, 255)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    image = image[..., :3]
    if image.dtype != np.uint8:
        # Float images in [0, 1] are what the fixtures produce before pre-processing.
        scale = 255.0 if image.max(initial=0) <= 1.0 else 1.0
        image = np.clip(image * scale, 0, 255).astype(np.uint8)
    return image


def _panel_size(shape: Sequence[int], max_side: int) -> tuple[int, int]:
    height, width = int(shape[0]), int(shape[1])
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def _resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(size[0]) * labels.shape[0] // size[0]).clip(0, labels.shape[0] - 1)
    cols = (np.arange(size[1]) * labels.shape[1] // size[1]).clip(0, labels.shape[1] - 1)
    return labels[np.ix_(rows, cols)]


def _resize_mask(mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    if mask is None:
        return np.zeros(size, dtype=bool)
    return _resize_labels(np.asarray(mask).astype(bool), size)


def _draw_prompt(draw: Any, prompt: Sequence[float] | np.ndarray,
                 scale: tuple[float, float]) -> None:
    shapes = np.asarray(prompt, dtype=np.float64)
    shapes = shapes.reshape(1, -1) if shapes.ndim == 1 else shapes
    if shapes.ndim != 2 or shapes.shape[1] not in (2, 4):
        raise ValueError(f"prompt must be a point (x, y) or box (x0, y0, x1, y1): {prompt!r}")
    sx, sy = scale
    for shape in shapes:
        if shape.size == 2:
            x, y = shape[0] * sx, shape[1] * sy
            # Yellow ring on a black one: visible on light and dark panels alike.
            draw.ellipse((x - 5, y - 5, x + 5, y + 5), outline=(0, 0, 0), width=4)
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), outline=(255, 255, 0), width=2)
        else:
            box = (shape[0] * sx, shape[1] * sy, shape[2] * sx, shape[3] * sy)
            draw.rectangle(box, outline=(0, 0, 0), width=3)
            draw.rectangle(box, outline=(255, 255, 0), width=1)


def _side_by_side(panels: Sequence[tuple[str, Any]]) -> PILImage.Image:
    from PIL import Image, ImageDraw

    pictures = [(caption, picture if isinstance(picture, Image.Image)
                 else Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)))
                for caption, picture in panels]
    width = sum(p.width for _, p in pictures) + _GAP * (len(pictures) - 1)
    height = max(p.height for _, p in pictures) + _CAPTION_HEIGHT
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for caption, picture in pictures:
        draw.text((x + 2, 1), caption, fill=(0, 0, 0))
        canvas.paste(picture, (x, _CAPTION_HEIGHT))
        x += picture.width + _GAP
    return canvas


def _png(image: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
