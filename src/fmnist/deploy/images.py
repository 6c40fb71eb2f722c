"""The one door for image files: decode with Pillow, refuse what cannot be used, and turn a
photo into a 28x28 dataset image.

Every exception Pillow raises while opening, decoding or converting an image becomes an
ImageError here (see `decoding`); everything that reads a user's image (`fmnist predict`,
`fmnist explain`, the Python API, the server) goes through `read_image` or `prepare`.

Zalando made Fashion-MNIST from product photos on white (Xiao et al. 2017, README of
zalandoresearch/fashion-mnist) by: trimming the border close to the corner colour
(within 5% of the largest distance in RGB space), resizing the longer edge to 28,
sharpening (Gaussian, radius and sigma 1.0), extending the shorter edge to 28 with the
item centred, negating the intensities and converting to 8-bit grayscale. `prepare`
follows those steps. Images that already look like dataset images (28x28, dark
background) are used as they are, so a dataset image saved as PNG predicts exactly as
its tensor does.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fmnist.errors import FmnistError
from fmnist.files import regular_file

SIZE = 28  # pixels on each side of a dataset image
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # decoders we let Pillow use
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")  # what a folder is searched for
MAX_PIXELS = 50_000_000  # a 50-megapixel phone photo; more is refused before decoding
WORK_EDGE = 1024  # larger images are box-reduced to this first: the result is 28 px anyway
TRIM_FUZZ = 0.05  # Zalando's trim tolerance, a fraction of the largest RGB distance


class ImageError(FmnistError):
    """An image that cannot be read or used (a server answers 400)."""


class UnsupportedImage(ImageError):
    """Not an image, or a format we do not decode (a server answers 415)."""


class ImageTooLarge(ImageError):
    """More pixels than MAX_PIXELS (a server answers 413)."""


# ----------------------------------------------------------------------------
# Read
# ----------------------------------------------------------------------------


@contextmanager
def decoding(name: str, max_pixels: int = MAX_PIXELS) -> Iterator[None]:
    """The one door for Pillow's work on an image: opening, decoding, converting.

    Pillow's decoders raise whatever their parsing meets in a malformed file (OSError,
    ValueError, SyntaxError, EOFError, struct.error, zlib.error, KeyError, IndexError,
    TypeError, DecompressionBombError, ...), so every exception but our own becomes an
    ImageError here; a file system error keeps its own words. Pillow's warnings about the
    file (a bomb-sized header, a corrupt EXIF block) are not shown: the image is either
    used or refused in one line, and MAX_PIXELS is checked right after the header."""
    try:
        with warnings.catch_warnings():
            # Only Pillow's own: should two server threads interleave here, what the
            # process may keep is these filters, never a wider silence.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise UnsupportedImage(
            f"{name}: not an image in an allowed format ({', '.join(FORMATS)})"
        ) from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: too many pixels (the limit is {max_pixels:,})") from None
    except MemoryError:
        raise ImageTooLarge(f"{name}: too large to decode in this machine's memory") from None
    except OSError as e:
        if e.errno is not None:  # the file system's error, not the image's
            raise ImageError(f"{name}: cannot read ({e.strerror})") from None
        raise ImageError(f"{name}: corrupt or truncated image ({brief(e)})") from None
    except Exception as e:
        raise ImageError(f"{name}: corrupt or malformed image ({brief(e)})") from None


def brief(e: BaseException) -> str:
    """An exception's words on one short line."""
    words = " ".join(str(e).split()) or type(e).__name__
    return words if len(words) <= 200 else words[:199] + "…"


def open_image(
    source: str | os.PathLike | bytes, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Decode the first frame of a file or of bytes, refusing bombs and unknown formats.

    The pixel count is checked from the header, before anything is decoded.
    """
    name = name or (str(source) if not isinstance(source, bytes) else "upload")
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name}: empty file; send a PNG, JPEG, WebP, GIF or BMP image")
        fp = io.BytesIO(source)
    else:
        fp = regular_file(source, "image", ImageError, "no such file")
        try:
            with open(fp, "rb") as f:
                empty = not f.read(1)
        except OSError as e:
            raise ImageError(f"{name}: cannot read ({e.strerror or e})") from None
        if empty:
            raise ImageError(f"{name}: empty file; give a PNG, JPEG, WebP, GIF or BMP image")
    with decoding(name, max_pixels):
        img = Image.open(fp, formats=FORMATS)
    try:
        with decoding(name, max_pixels):
            w, h = img.size
            if w * h > max_pixels:
                raise ImageTooLarge(
                    f"{name}: {w}x{h} is {w * h:,} pixels; the limit is {max_pixels:,}"
                )
            if w == 0 or h == 0:
                raise ImageError(f"{name}: the image has no pixels ({w}x{h})")
            if img.format == "JPEG":
                # Decode big JPEGs at 1/2, 1/4 or 1/8 scale (DCT scaling): much faster, and
                # the result is 28 pixels anyway.
                img.draft(img.mode, (WORK_EDGE, WORK_EDGE))
            img.load()
    except ImageError:
        img.close()
        raise
    return img


def rgb_image(img: Image.Image, name: str = "image") -> Image.Image:
    """Any image, read from a file or given in memory, as RGB (see to_rgb), through the door."""
    with decoding(name):
        w, h = img.size
        if w == 0 or h == 0:
            raise ImageError(f"{name}: the image has no pixels ({w}x{h})")
        return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB, upright (EXIF orientation), transparency composited over white like a product shot."""
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block, in any of its ways: keep the pixels as stored
        pass
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("pixels that are NaN or infinite")
        scale = 257.0 if img.mode.startswith("I;16") or arr.max() > 255 else 1.0
        img = Image.fromarray(np.clip(arr / scale, 0, 255).round().astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


# ----------------------------------------------------------------------------
# Prepare: the dataset's recipe
# ----------------------------------------------------------------------------


def gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as Pillow's convert("L") computes it, in float."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def looks_like_dataset(img: Image.Image) -> bool:
    """28x28 with a dark border: every one of the 70,000 dataset images has a border mean
    below 108, while a photo's light background is near 255. Given the RGB image, so a
    transparent border counts as the white it is composited over."""
    if img.size != (SIZE, SIZE):
        return False
    g = np.asarray(img.convert("L"), dtype=np.float64)
    border = np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])
    return border.mean() < 128


def background(rgb: np.ndarray) -> np.ndarray:
    """The corner colour: the per-channel median of the four corners (one corner may be item)."""
    corners = np.stack([rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]]).astype(np.float64)
    return np.median(corners, axis=0)


def trim_box(rgb: np.ndarray, bg: np.ndarray, name: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels farther than TRIM_FUZZ from the corner colour."""
    # RMS over the channels, so 5% of 255 is 5% of the largest distance in RGB space.
    dist = np.sqrt(((rgb.astype(np.float32) - bg.astype(np.float32)) ** 2).mean(axis=2))
    item = dist > TRIM_FUZZ * 255
    rows, cols = np.flatnonzero(item.any(axis=1)), np.flatnonzero(item.any(axis=0))
    if rows.size == 0:
        raise ImageError(f"{name}: no item found; the image is all one colour")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def adaptive_sharpen(rgb: np.ndarray) -> np.ndarray:
    """ImageMagick's -adaptive-sharpen 1x1, the step Zalando describes: an unsharp mask with a
    Gaussian of radius 1 and sigma 1, applied in proportion to the local edge strength."""
    k = np.exp(-0.5 * np.arange(-1, 2) ** 2)
    k /= k.sum()
    pad = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = rgb.shape[:2]
    rows = sum(k[i] * pad[:, i : i + w] for i in range(3))
    blur = sum(k[i] * rows[i : i + h] for i in range(3))
    g = np.pad(gray(rgb), 1, mode="edge")
    gx = (g[1:-1, 2:] - g[1:-1, :-2]) / 2
    gy = (g[2:, 1:-1] - g[:-2, 1:-1]) / 2
    edge = np.hypot(gx, gy)
    amount = edge / edge.max() if edge.max() > 0 else edge
    return np.clip(rgb + amount[..., None] * (rgb - blur), 0, 255)


def prepare(img: Image.Image, name: str = "image") -> np.ndarray:
    """Any decoded image -> uint8 (28, 28), item bright on a dark background."""
    img = rgb_image(img, name)  # alpha composited over white at every size
    if looks_like_dataset(img):
        g = np.asarray(img.convert("L"), dtype=np.uint8).copy()
        rgb = np.repeat(g[..., None], 3, axis=2)
        trim_box(rgb, background(rgb), name)  # refuses an image all of one colour
        return g
    longer = max(img.size)
    if longer > WORK_EDGE:
        img = img.reduce(math.ceil(longer / WORK_EDGE))
    rgb = np.asarray(img)
    bg = background(rgb)
    img = img.crop(trim_box(rgb, bg, name))
    w, h = img.size
    scale = SIZE / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Zalando subsampled; a box filter is subsampling that averages the skipped pixels
    # instead of dropping them, so textures of a large photo do not alias into noise.
    img = img.resize(size, Image.Resampling.BOX)
    # When the margins cannot be equal the dataset puts the extra pixel on the left and on top
    # (measured on the test set), so we do too.
    canvas = np.empty((SIZE, SIZE, 3))
    canvas[:] = bg
    left, top = (SIZE - size[0] + 1) // 2, (SIZE - size[1] + 1) // 2
    canvas[top : top + size[1], left : left + size[0]] = adaptive_sharpen(np.asarray(img, float))
    g = gray(canvas)
    bg_level = float(gray(bg.reshape(1, 3))[0])
    # Negate so a light background becomes dark (a dark one, a drawing in white on black,
    # already is), measured from the background so that it becomes 0. Then stretch so the
    # brightest pixel is 255: every one of the dataset's images reaches 254 or 255.
    g = np.clip(bg_level - g if bg_level >= 128 else g - bg_level, 0, None)
    peak = g.max()
    if peak > 0:
        g = g * (255.0 / peak)
    return np.clip(np.round(g), 0, 255).astype(np.uint8)


def read_image(
    source: str | os.PathLike | bytes, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """A file path or bytes -> uint8 (28, 28) ready for the model."""
    name = name or (str(source) if not isinstance(source, bytes) else "upload")
    img = open_image(source, name, max_pixels)
    try:
        return prepare(img, name)
    finally:
        img.close()


def find_images(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded to their image files (by suffix, sorted, not recursive)."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not files:
                raise ImageError(f"{p}: no images in this folder ({', '.join(SUFFIXES)})")
            found += files
        else:
            found.append(regular_file(p, "image", ImageError, "no such file or folder"))
    return found
