"""Reading a user's picture safely, for the command line and the app alike.

A picture a person uploads can be anything: a phone photo lying on its side,
a PNG with a transparent background, a 16-bit scan, a text file renamed to
``.png``, or a tiny file whose header claims a billion pixels (a
"decompression bomb" that would fill the memory if decoded). ``read_image``
turns all of these into either a decoded, upright ``PIL.Image`` or one
``ImageError`` sentence that says what was wrong and what is accepted.

Memory stays bounded for any accepted file. A 57 KB PNG of 14000 x 1400
pixels is fine to decode (59 MB) but not to pad to a square in float32 (2.4 GB
per copy), which is what a dataset's preprocessing does with a long picture.
So ``read_image(..., max_side=MAX_SIDE)`` shrinks the decoded picture in PIL,
by a whole factor, one band of rows at a time, *before* any float conversion
or padding; a JPEG is even decoded at the smaller scale (``Image.draft``).
Pictures whose long side is more than ``MAX_ASPECT`` times their short side are refused
from the header: no dataset learns from a 50,000,000 x 1 line.

Colour handling is separate: the dataset's ``preprocess`` functions call
``to_rgb_on_white`` or ``to_grey_on_white`` so that every mode PIL knows ends
up as plain RGB or greyscale, with transparency shown as white paper.
"""
from __future__ import annotations

import io
import math
import os
import re
import warnings
from typing import BinaryIO, Union

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "read_image", "shrink", "to_rgb_on_white", "to_grey_on_white",
           "MAX_PIXELS", "MAX_ASPECT", "MAX_SIDE"]

MAX_PIXELS = 50_000_000  # 50 megapixels: more than any phone camera, far less than a bomb
MAX_ASPECT = 20  # longer side / shorter side: a wide panorama passes, a line of pixels does not
# Longest side of the picture a dataset's preprocessing receives: 8 times the
# largest model input (128 px), so the final resize still averages many pixels,
# and a padded float32 square of it is 12 MB.
MAX_SIDE = 1024
_BAND_BYTES = 16 * 2**20  # rows converted at a time while shrinking

ImageSource = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]


class ImageError(ValueError):
    """A picture that cannot be used, with one sentence saying why."""


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and a name for it to use in messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "The upload"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ImageError(f"There is no file at {path!r}; give the path of a PNG or JPEG image.")
        with open(path, "rb") as f:
            return f.read(), f"The file {path!r}"
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise ImageError("The file was opened as text; open it in binary mode ('rb').")
        name = getattr(source, "name", None)
        return bytes(data), (f"The file {name!r}" if isinstance(name, str) else "The upload")
    raise ImageError(
        f"Cannot read an image from a {type(source).__name__}; "
        "give bytes, a file path or an open binary file."
    )


def _mp(pixels: int) -> str:
    """A pixel count in megapixels, as short as it can be written: 50, 89.5, 0.01."""
    mp = pixels / 1e6
    return f"{mp:.0f}" if mp >= 100 else f"{mp:.3g}"


def _megapixels(width: int, height: int) -> str:
    return f"{width} x {height} pixels ({_mp(width * height)} megapixels)"


def _bomb_error(name: str, exc: Exception, max_pixels: int) -> ImageError:
    """The refusal of a file PIL flags as a decompression bomb, with its size.

    PIL raises before we see the header's size when it is more than twice
    its own limit; its message holds the pixel count, so report that.
    """
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{_mp(int(found.group(1)))} megapixels" if found else "too many pixels"
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    return ImageError(f"{name} claims {size}, too many to decode safely; the limit is {_mp(limit)} megapixels.")


def read_image(source: ImageSource, max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> Image.Image:
    """Open, check and decode a picture; return it upright and fully loaded.

    The size and the aspect ratio are checked from the header *before* any
    pixel is decoded, so a tiny file claiming a huge size costs nothing.
    With ``max_side``, the picture is shrunk (``shrink``) right after decoding
    so that its longer side is at most that many pixels. EXIF orientation is
    applied because phones store photos sideways and only record the rotation
    in the metadata.
    """
    data, name = _read_bytes(source)
    if len(data) == 0:
        raise ImageError("The file is empty; upload a PNG or JPEG image.")

    with warnings.catch_warnings():
        # PIL only *warns* about a possible decompression bomb below twice its
        # own limit; turn the warning into an error so it cannot slip through.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))  # reads the header only
        except UnidentifiedImageError:
            raise ImageError(f"{name} is not an image (or in a format that cannot be opened); upload a PNG or JPEG picture.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error(name, exc, max_pixels) from None
        except Exception as exc:  # a header so broken that PIL gives up while parsing
            raise ImageError(f"{name} is corrupt and cannot be opened ({exc}); upload a PNG or JPEG.") from None

        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"{name} is {_megapixels(width, height)}; the limit is {_mp(max_pixels)} megapixels. "
                "Make it smaller and try again."
            )
        if width == 0 or height == 0:
            raise ImageError(f"{name} has no pixels ({width} x {height}); upload a PNG or JPEG image.")
        if max(width, height) > MAX_ASPECT * min(width, height):
            raise ImageError(
                f"{name} is {width} x {height} pixels, its long side {max(width, height) / min(width, height):.0f} "
                f"times its short side; pictures up to {MAX_ASPECT} times as wide as tall (or as tall as wide) "
                "are accepted, so crop it and try again."
            )
        if max_side is not None and max(width, height) > max_side:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: far less memory and time.
            factor = math.ceil(max(width, height) / max_side)
            img.draft(None, (math.ceil(width / factor), math.ceil(height / factor)))

        try:
            img.load()  # decode now, so a truncated file fails here and not later
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error(name, exc, max_pixels) from None
        except Exception as exc:
            raise ImageError(
                f"{name} is truncated or corrupt and cannot be decoded ({exc}); "
                "save it again as PNG or JPEG."
            ) from None

    if max_side is None:
        try:
            return ImageOps.exif_transpose(img)
        except Exception:
            return img  # broken EXIF metadata: keep the picture as stored rather than refuse it
    # Shrink first, rotate after: rotating the full-size picture would copy it.
    try:
        small = shrink(img, max_side)
    except (ValueError, OSError) as exc:  # a colour mode PIL cannot convert
        raise ImageError(f"Images in colour mode {img.mode!r} are not supported ({exc}); use RGB or greyscale.") from None
    return _upright(small, _orientation(img))


# EXIF orientation tag -> the transposition that shows the picture upright
# (the table of the EXIF 2.3 standard, as in PIL's ``ImageOps.exif_transpose``).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:
        return 1  # broken EXIF metadata: keep the picture as stored rather than refuse it


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    )


def _shrinkable_mode(img: Image.Image) -> str:
    """The mode ``img`` is averaged in: PIL's ``reduce`` cannot average
    palette indices or bits, and colour spaces such as HSV are averaged as RGB."""
    if _has_alpha(img):
        return "RGBA"  # reduce premultiplies alpha, so transparent colour does not bleed
    if img.mode in ("1", "L"):
        return "L"
    if img.mode.startswith("I;16"):
        return "I"
    if img.mode in ("RGB", "I", "F"):
        return img.mode
    return "RGB"


def shrink(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """``img`` averaged down by a whole factor so that its longer side is at
    most ``max_side`` pixels (box filter: each output pixel is the mean of a
    factor x factor block, as PIL's ``Image.reduce``); unchanged when smaller.

    Done one band of rows at a time so that converting the mode (a palette
    picture to RGBA) never holds a second full-size copy.
    """
    width, height = img.size
    factor = math.ceil(max(width, height) / max_side)
    if factor <= 1:
        return img
    mode = _shrinkable_mode(img)
    out = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    band = factor * max(1, _BAND_BYTES // (4 * width * factor))  # rows, a multiple of the factor
    for top in range(0, height, band):
        piece = img.crop((0, top, width, min(height, top + band)))
        out.paste(piece.convert(mode).reduce(factor), (0, top // factor))
    return out


def _to_8bit_grey(img: Image.Image) -> Image.Image:
    """An 'L' image from the integer and float modes PIL cannot convert well.

    ``Image.convert('L')`` clips 16-bit values at 255, which would turn most
    of a 16-bit scan white; scale the range instead.
    """
    arr = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        scale = 255.0 if np.nanmax(arr, initial=0.0) <= 1.0 else 1.0  # floats in 0..1 or 0..255
    else:
        scale = 1.0 / 257.0 if np.nanmax(arr, initial=0.0) > 255 else 1.0  # 16-bit or already 8-bit
    arr = np.nan_to_num(arr * scale, nan=255.0)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_rgb_on_white(img: Image.Image) -> Image.Image:
    """``img`` as an RGB image; transparent parts become white paper.

    Handles every common mode: palette ('P', with or without a transparent
    colour), greyscale ('L', 'LA', '1'), 16/32-bit ('I;16', 'I', 'F'), CMYK,
    YCbCr and RGBA. A drawing exported with a transparent background is
    therefore seen as dark strokes on white, the way a person drew it.
    """
    if img.mode.startswith("I") or img.mode == "F":
        return _to_8bit_grey(img).convert("RGB")
    try:
        if _has_alpha(img):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"Images in colour mode {img.mode!r} are not supported ({exc}); use RGB or greyscale.") from None


def to_grey_on_white(img: Image.Image) -> Image.Image:
    """``img`` as an 8-bit greyscale ('L') image; transparency becomes white."""
    return to_rgb_on_white(img).convert("L")
