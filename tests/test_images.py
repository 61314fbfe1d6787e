"""A user's picture: odd ones are read, bad ones refused with a clear sentence."""
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFile

from mtlcore.data import dataset_info, load_dataset
from mtlcore.images import ImageError, read_image, to_grey_on_white, to_rgb_on_white


def encode(img, fmt="PNG", **kwargs):
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def drawing(size=(120, 90)):
    """A blue disc on white: something every dataset can make sense of."""
    img = Image.new("RGB", size, "white")
    w, h = size
    ImageDraw.Draw(img).ellipse((w * 0.2, h * 0.2, w * 0.8, h * 0.8), fill=(20, 40, 230))
    return img


def transparent_drawing():
    img = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((20, 20, 60, 60), fill=(255, 0, 0, 255))
    return img


def palette_with_transparency():
    """Palette colour 0 (black) is transparent, colour 1 is red."""
    img = Image.new("P", (60, 60), 0)
    img.putpalette([0, 0, 0, 255, 0, 0])
    ImageDraw.Draw(img).rectangle((15, 15, 45, 45), fill=1)
    img.info["transparency"] = 0
    return img


def sixteen_bit():
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    return Image.fromarray(ramp)  # mode I;16


ODD_IMAGES = {
    "rgba": transparent_drawing,
    "greyscale": lambda: drawing().convert("L"),
    "greyscale+alpha": lambda: drawing().convert("LA"),
    "palette": lambda: drawing().convert("P", palette=Image.Palette.ADAPTIVE, colors=8),
    "palette+transparency": palette_with_transparency,
    "16-bit": sixteen_bit,
    "16-bit png": lambda: read_image(encode(sixteen_bit())),
    "1x1": lambda: Image.new("RGB", (1, 1), (200, 10, 10)),
    "black and white": lambda: drawing().convert("1"),
    "cmyk": lambda: drawing().convert("CMYK"),
    "large": lambda: drawing((2000, 1500)),
    "jpeg": lambda: read_image(encode(drawing(), "JPEG", quality=70)),
    "blank": lambda: Image.new("RGB", (64, 64), "white"),
}
EMBEDDED = ["shapes", "digits", "multidigits", "synthetic"]  # always there: no files to fetch
IMAGE_DATASETS = [name for name in EMBEDDED if dataset_info(name).preprocess is not None]


def test_every_embedded_image_dataset_has_a_preprocess_and_a_hint():
    assert IMAGE_DATASETS == ["shapes", "digits", "multidigits"]
    for info in map(dataset_info, EMBEDDED):
        assert (info.preprocess is not None) == (info.input_kind == "image")
        assert bool(info.image_hint) == (info.input_kind == "image")


@pytest.mark.parametrize("kind", ODD_IMAGES)
@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_odd_pictures_become_one_input_like_the_training_inputs(name, kind):
    info = dataset_info(name)
    data = load_dataset(name, seed=0)
    x = info.preprocess(ODD_IMAGES[kind](), **info.options)
    assert x.dtype == torch.float32
    assert tuple(x.shape) == data.input_shape
    assert torch.isfinite(x).all()
    assert x.min() >= data.train.x.min() and x.max() <= data.train.x.max()


# --- Modes ------------------------------------------------------------------

def test_transparency_is_white_paper():
    rgb = to_rgb_on_white(transparent_drawing())
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((40, 40)) == (255, 0, 0)
    palette = to_rgb_on_white(palette_with_transparency())
    assert palette.getpixel((0, 0)) == (255, 255, 255)  # transparent black is paper, not ink
    assert palette.getpixel((30, 30)) == (255, 0, 0)


def test_sixteen_bit_pictures_keep_their_greys():
    grey = np.asarray(to_grey_on_white(sixteen_bit()))
    assert grey.min() == 0 and grey.max() == 255
    assert 100 < grey.mean() < 155  # a ramp, not a white sheet


# --- Reading ----------------------------------------------------------------

def test_bytes_paths_and_open_files_are_all_read(tmp_path):
    png = encode(drawing())
    path = tmp_path / "drawing.png"
    path.write_bytes(png)
    for source in (png, bytearray(png), str(path), path, io.BytesIO(png), open(path, "rb")):
        assert read_image(source).size == (120, 90)


def test_a_phone_photo_is_turned_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = encode(Image.new("RGB", (40, 20), "red"), "JPEG", exif=exif.tobytes())
    assert read_image(stored).size == (20, 40)


def png_claiming(width, height):
    """A tiny PNG whose header claims width x height pixels (no real data)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_an_empty_file_is_refused():
    with pytest.raises(ImageError, match="empty"):
        read_image(b"")


def test_a_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are my notes, not a picture")
    with pytest.raises(ImageError, match="not an image"):
        read_image(path)


def test_a_truncated_png_is_refused():
    noise = Image.fromarray(np.random.RandomState(0).randint(0, 255, (100, 100, 3), dtype=np.uint8))
    png = encode(noise)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        read_image(png[: len(png) // 2])


def test_a_missing_path_is_refused(tmp_path):
    with pytest.raises(ImageError, match="no file"):
        read_image(tmp_path / "nowhere.png")


def test_a_huge_picture_is_refused_from_its_header_without_decoding(monkeypatch):
    def never_decode(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never_decode)
    with pytest.raises(ImageError, match=r"8000 x 7000 pixels \(56 megapixels\); the limit is 50 megapixels"):
        read_image(png_claiming(8000, 7000))


def test_a_decompression_bomb_is_refused_with_its_size():
    with pytest.raises(ImageError, match="400 megapixels.*limit is 50 megapixels"):
        read_image(png_claiming(20_000, 20_000))
    with pytest.raises(ImageError, match="megapixels"):  # over PIL's own limit
        read_image(png_claiming(10_000, 10_000), max_pixels=10**9)


def test_the_limit_can_be_lowered():
    with pytest.raises(ImageError, match="limit is 0.01 megapixels"):
        read_image(encode(drawing((200, 100))), max_pixels=10_000)


# --- Bounded memory for long pictures (issue 14) ------------------------------

def long_png(width, height, mode="RGB"):
    """A PNG of a long strip: tiny on disk, many pixels once decoded."""
    img = Image.new(mode, (width, height), "white" if mode != "P" else 0)
    ImageDraw.Draw(img).ellipse((width // 2 - height // 3, height // 6, width // 2 + height // 3, 5 * height // 6),
                                fill=(220, 30, 30) if mode == "RGB" else 1)
    return encode(img, optimize=True)


def spy_on_preprocess(monkeypatch, dataset="shapes"):
    """Replace the dataset's preprocessing with one that records what it is given."""
    import dataclasses

    import mtlcore.predict as predict

    seen = []
    info = dataset_info(dataset)

    def spy(img, **options):
        seen.append((img.size, img.mode))
        if max(img.size) > 4096:  # fail before the old, gigabyte-hungry padding starts
            raise AssertionError(f"the dataset was handed the full {img.size[0]} x {img.size[1]} picture")
        return info.preprocess(img, **options)

    monkeypatch.setattr(predict, "dataset_info", lambda name: dataclasses.replace(info, preprocess=spy))
    return seen


@pytest.mark.parametrize("size", [(14000, 1400), (20000, 2500), (1400, 14000)])
def test_a_long_picture_is_shrunk_in_pil_before_the_dataset_pads_it(monkeypatch, size):
    # Padding a 14000 x 1400 picture to a float32 square took 7.4 GB; the
    # dataset must only ever see a picture of at most MAX_SIDE pixels.
    from mtlcore.images import MAX_SIDE
    from mtlcore.predict import preprocess

    seen = spy_on_preprocess(monkeypatch)
    x = preprocess(long_png(*size), "shapes")
    assert tuple(x.shape) == (3, 32, 32) and torch.isfinite(x).all()
    (shape, mode), = seen
    assert max(shape) <= MAX_SIDE
    assert shape[0] / shape[1] == pytest.approx(size[0] / size[1], rel=0.02)  # not squashed


def test_a_line_of_fifty_million_pixels_is_refused_in_one_sentence():
    from mtlcore.predict import preprocess

    line = encode(Image.new("L", (50_000_000, 1), 255), optimize=True)
    assert len(line) < 100_000
    with pytest.raises(ImageError, match=r"50000000 x 1 pixels.*up to 20 times as wide as tall"):
        preprocess(line, "shapes")


def test_shrinking_does_not_change_what_the_model_sees():
    from mtlcore.predict import preprocess

    big = drawing((3000, 2000))
    for name in IMAGE_DATASETS:
        info = dataset_info(name)
        direct = info.preprocess(big, **info.options)
        shrunk = preprocess(encode(big), name)
        # At most one grey level (digits count ink in 17 levels: 2/16 apart) here
        # and there on a block's edge; the same picture on average.
        assert (direct - shrunk).abs().max() <= 0.13, name
        assert (direct - shrunk).abs().mean() < 0.01, name


def test_shrinking_keeps_transparency_as_paper_and_turns_photos_upright():
    from mtlcore.images import shrink

    img = Image.new("P", (4000, 400), 0)
    img.putpalette([0, 0, 0, 255, 0, 0])
    ImageDraw.Draw(img).rectangle((1000, 100, 3000, 300), fill=1)
    img.info["transparency"] = 0
    small = to_rgb_on_white(shrink(img, 1000))
    assert small.size == (1000, 100)
    assert small.getpixel((10, 10)) == (255, 255, 255) and small.getpixel((500, 50)) == (255, 0, 0)

    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = encode(Image.new("RGB", (4000, 2000), "red"), "JPEG", exif=exif.tobytes())
    upright = read_image(stored, max_side=1024)
    assert upright.size[1] > upright.size[0] and max(upright.size) <= 1024
