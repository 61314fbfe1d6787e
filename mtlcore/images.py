"""Reading a user's picture safely, for the command line and the app alike.

A picture a person uploads can be anything: a phone photo lying on its side,
a PNG with a transparent background, a 16-bit scan, a text file renamed to
``.png``, or a tiny file whose header claims a billion pixels (a
"decompression bomb" that would fill the memory if decoded). ``read_image``
turns all of these into either a decoded, upright ``PIL.Image`` or one
``ImageError`` sentence that says what was wrong and what is accepted.

Colour handling is separate: the dataset's ``preprocess`` functions call
``to_rgb_on_white`` or ``to_grey_on_white`` so that every mode PIL knows ends
up as plain RGB or greyscale, with transparency shown as white paper.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "read_image", "to_rgb_on_white", "to_grey_on_white", "MAX_PIXELS"]

MAX_PIXELS = 50_000_000  # 50 megapixels: more than any phone camera, far less than a bomb

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


def read_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open, check and decode a picture; return it upright and fully loaded.

    The size is checked from the header *before* any pixel is decoded, so a
    tiny file claiming a huge size costs nothing. EXIF orientation is applied
    (``ImageOps.exif_transpose``) because phones store photos sideways and
    only record the rotation in the metadata.
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

        try:
            img.load()  # decode now, so a truncated file fails here and not later
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error(name, exc, max_pixels) from None
        except Exception as exc:
            raise ImageError(
                f"{name} is truncated or corrupt and cannot be decoded ({exc}); "
                "save it again as PNG or JPEG."
            ) from None

    try:
        img = ImageOps.exif_transpose(img)
    except Exception:
        pass  # broken EXIF metadata: keep the picture as stored rather than refuse it
    return img


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
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    ) or (img.mode in ("L", "RGB") and "transparency" in img.info)
    try:
        if has_alpha:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"Images in colour mode {img.mode!r} are not supported ({exc}); use RGB or greyscale.") from None


def to_grey_on_white(img: Image.Image) -> Image.Image:
    """``img`` as an 8-bit greyscale ('L') image; transparency becomes white."""
    return to_rgb_on_white(img).convert("L")
