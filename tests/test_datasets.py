"""Datasets: the tensors a model trains on are the ones the docs promise."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mtlcore.data import dataset_info, list_datasets, load_dataset
from mtlcore.data import digits, multidigits, shapes, synthetic

NAMES = ["shapes", "digits", "multidigits", "synthetic"]
# Small but enough for every check; shapes and multidigits are generated.
SMALL = {"shapes": {"n_samples": 400}, "digits": {"n_samples": 400},
         "multidigits": {"n_samples": 400}, "synthetic": {"n_samples": 400}}


def build(name, seed=0, **options):
    return dataset_info(name).build(seed=seed, **{**SMALL[name], **options})


def test_the_embedded_datasets_are_listed_first_in_registration_order():
    listed = [info.name for info in list_datasets()]
    assert listed[: len(NAMES)] == NAMES
    assert all(dataset_info(name).source == "embedded" for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_declared_tasks_are_the_targets_present(name):
    info, data = dataset_info(name), build(name)
    assert [t.name for t in info.tasks] == list(data.tasks)
    assert tuple(data.tasks.values()) == info.tasks
    for split in data.splits().values():
        assert set(split.y) == set(data.tasks)
    assert set(info.option_help) == set(info.options)
    assert data.input_kind == info.input_kind


@pytest.mark.parametrize("name", NAMES)
def test_inputs_and_targets_have_the_promised_types_and_ranges(name):
    data = build(name)
    expected_shape = {"shapes": (3, 32, 32), "digits": (1, 8, 8), "multidigits": (1, 14, 14), "synthetic": (100,)}
    assert data.input_shape == expected_shape[name]
    for split in data.splits().values():
        assert split.x.dtype == torch.float32
        assert torch.isfinite(split.x).all()
        if data.input_kind == "image":
            assert split.x.min() >= -1.0 and split.x.max() <= 1.0
        for task, target in split.y.items():
            spec = data.tasks[task]
            assert len(target) == len(split)
            if spec.kind == "classification":
                assert target.dtype == torch.int64
                assert target.min() >= 0 and target.max() < spec.num_classes
                assert len(spec.classes) == spec.num_classes
            else:
                assert target.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_tensors_other_seed_other_tensors(name):
    a, b, c = build(name, seed=3), build(name, seed=3), build(name, seed=4)
    for split in ("train", "val", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.x, sb.x)
        assert all(torch.equal(sa.y[t], sb.y[t]) for t in sa.y)
    assert not torch.equal(a.train.x, c.train.x)


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_about_70_15_15_and_cover_every_sample(name):
    data = build(name)
    sizes = [len(s) for s in data.splits().values()]
    assert sum(sizes) == 400
    assert sizes == [280, 60, 60]


def test_no_picture_is_in_both_train_and_test():
    data = build("shapes")
    train = {row.numpy().tobytes() for row in data.train.x}
    assert not any(row.numpy().tobytes() in train for row in data.test.x)


def test_multidigits_pairs_two_different_images_and_keeps_test_digits_unseen():
    pools = [p.numpy() for p in digits.split_indices(1797, 0)]
    assert not set(pools[0]) & set(pools[2])
    _, tl, br = multidigits.compose(np.random.RandomState(0), pools[2], 500, canvas=14, max_shift=1)
    assert (tl != br).all()
    assert set(tl) <= set(pools[2]) and set(br) <= set(pools[2])


@pytest.mark.parametrize("name", ["shapes", "digits", "synthetic"])
def test_regression_targets_are_standardised_with_train_statistics(name):
    data = build(name)
    for task, spec in data.tasks.items():
        if spec.kind != "regression":
            continue
        y = data.train.y[task]
        assert abs(float(y.mean())) < 1e-4
        assert abs(float(y.std()) - 1.0) < 1e-4
        assert data.target_stats[task][1] > 0


def test_shapes_targets_in_original_units_are_pixels_inside_the_image():
    data = build("shapes", image_size=40)
    lo, hi = shapes.size_range(40)
    for split in data.splits().values():
        px = {t: split.y[t] * data.target_stats[t][1] + data.target_stats[t][0] for t in ("size", "x", "y")}
        assert px["size"].min() >= lo - 1e-3 and px["size"].max() <= hi + 1e-3
        # The whole shape lies inside the picture.
        for axis in ("x", "y"):
            assert (px[axis] - px["size"]).min() >= 0 and (px[axis] + px["size"]).max() <= 40


def test_digits_groupings_and_ink_agree_with_the_picture():
    data = build("digits")
    for split in data.splits().values():
        digit = split.y["digit"]
        assert torch.equal(split.y["parity"], digit % 2)
        assert torch.equal(split.y["big"], (digit >= 5).long())
        mean, std = data.target_stats["ink"]
        levels = (split.x * 0.5 + 0.5) * 16
        assert torch.allclose(split.y["ink"] * std + mean, levels.sum((1, 2, 3)) / 1024, atol=1e-4)


def test_digits_uses_all_1797_images_by_default():
    data = load_dataset("digits", seed=0)
    assert sum(len(s) for s in data.splits().values()) == 1797


def test_shapes_background_is_independent_of_the_shape():
    data = load_dataset("shapes", seed=0)
    shape = torch.cat([s.y["shape"] for s in data.splits().values()])
    background = torch.cat([s.y["background"] for s in data.splits().values()])
    counts = torch.zeros(4, 4)
    counts.index_put_((shape, background), torch.ones(len(shape)), accumulate=True)
    # Every combination appears, each near 1/16 of the pictures.
    assert counts.min() > 0.5 * len(shape) / 16
    assert counts.max() < 1.5 * len(shape) / 16


def test_label_noise_changes_only_training_labels():
    clean, noisy = build("shapes", label_noise=0.0), build("shapes", label_noise=0.25)
    assert torch.equal(clean.train.x, noisy.train.x)
    for task in ("shape", "color", "background"):
        changed = (clean.train.y[task] != noisy.train.y[task]).float().mean()
        assert abs(float(changed) - 0.25) < 0.01
        assert torch.equal(clean.test.y[task], noisy.test.y[task])
        assert torch.equal(clean.val.y[task], noisy.val.y[task])
    assert torch.equal(clean.train.y["size"], noisy.train.y["size"])


@pytest.mark.parametrize("name, options, words", [
    ("shapes", {"image_size": 8}, "image_size must be between 16 and 64"),
    ("shapes", {"image_size": 100}, "image_size must be between 16 and 64"),
    ("shapes", {"label_noise": 1.5}, "label_noise"),
    ("synthetic", {"correlation": 1.5}, "correlation must be between -1 and 1"),
    ("synthetic", {"correlation": -2}, "correlation must be between -1 and 1"),
    ("multidigits", {"canvas": 9}, "canvas must be between 10 and 24"),
    ("digits", {"n_samples": 5000}, "n_samples"),
])
def test_bad_options_are_refused_with_a_clear_sentence(name, options, words):
    with pytest.raises(ValueError, match=words):
        load_dataset(name, seed=0, **options)


def test_an_unknown_option_names_the_valid_ones():
    with pytest.raises(ValueError, match="options are: image_size, label_noise, n_samples"):
        load_dataset("shapes", seed=0, colour="red")


def test_load_dataset_returns_the_cached_object():
    assert load_dataset("synthetic", seed=1, n_samples=500) is load_dataset("synthetic", seed=1, n_samples="500")
    assert load_dataset("synthetic", seed=1, n_samples=500) is not load_dataset("synthetic", seed=2, n_samples=500)


def test_synthetic_linear_parts_have_the_chosen_correlation():
    for p in (0.9, 0.5, 0.0, -0.7):
        rng = np.random.RandomState(0)
        w_a, w_b = synthetic.task_weights(rng, 100, p, scale=2.0)
        assert np.linalg.norm(w_a) == pytest.approx(2.0) and np.linalg.norm(w_b) == pytest.approx(2.0)
        x = rng.standard_normal((20_000, 100))
        assert np.corrcoef(x @ w_a, x @ w_b)[0, 1] == pytest.approx(p, abs=0.03)


def test_synthetic_labels_grow_apart_as_the_correlation_drops():
    def label_correlation(p):
        data = load_dataset("synthetic", seed=0, correlation=p)
        return float(np.corrcoef(data.train.y["task_a"], data.train.y["task_b"])[0, 1])

    found = [label_correlation(p) for p in (1.0, 0.5, 0.0, -0.5)]
    assert found == sorted(found, reverse=True)
    assert found[0] > 0.95 and abs(found[2]) < 0.1


def test_multidigits_canvas_option_sets_the_picture_size():
    data = build("multidigits", canvas=16, max_shift=2)
    assert data.input_shape == (1, 16, 16)
    assert dataset_info("multidigits").preprocess(Image.new("L", (50, 40)), canvas=16, max_shift=2).shape == (1, 16, 16)


# --- A user's picture looks like the training pictures -----------------------

def test_a_red_triangle_drawn_on_white_looks_like_the_training_ones():
    """The way a user draws it: a paint program, a white canvas, pure red."""
    canvas = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(canvas).polygon([(150, 50), (245, 215), (55, 215)], fill=(255, 0, 0))
    x = shapes.preprocess(canvas)
    assert x.shape == (3, 32, 32)

    data = load_dataset("shapes", seed=0)
    train = data.train
    like = (train.y["shape"] == 2) & (train.y["color"] == 0) & (train.y["background"] == 0)
    examples = train.x[like]
    examples = examples[examples.mean((1, 2, 3)) > 0.3]  # light plain backgrounds
    assert len(examples) >= 5
    channel_means = examples.mean((2, 3))
    assert (x.mean((1, 2)) >= channel_means.min(0).values - 0.05).all()
    assert (x.mean((1, 2)) <= channel_means.max(0).values + 0.05).all()
    # The corners are white paper, the centre pure red: both inside the
    # training ranges of a plain background and of the red fill.
    assert torch.allclose(x[:, 0, 0], torch.ones(3))
    r, g, b = (x[:, 20, 16] * 0.5 + 0.5).tolist()
    (r_lo, r_hi), (g_lo, g_hi), (b_lo, b_hi) = shapes.COLOR_RANGES["red"]
    assert r_lo <= r <= r_hi and g_lo <= g <= g_hi and b_lo <= b <= b_hi
    # Its size in the 32-pixel picture is one the training shapes have.
    size_px = 110 / 300 * 32  # circumradius of the drawn triangle, rescaled
    lo, hi = shapes.size_range(32)
    assert lo <= size_px <= hi


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_a_shape_drawn_in_a_paint_program_becomes_the_generators_picture(shape):
    """Same shape, place, size and turn: the preprocessed drawing and the
    generated training picture differ only along antialiased edges."""
    cx = cy = 15.0
    r, angle, k = 10.0, 0.3, 300 / 32  # k: canvas pixels per training pixel
    labels = {"shape": np.array([shapes.SHAPES.index(shape)]), "x": np.array([cx]), "y": np.array([cy]),
              "size": np.array([r]), "angle": np.array([angle])}
    coverage = torch.from_numpy(shapes.shape_masks(labels, 32)[0])
    generated = torch.ones(3, 32, 32)
    generated[1:] -= coverage  # pure red (1, 0, 0) over white paper
    generated = shapes.normalise(generated)

    canvas = Image.new("RGB", (300, 300), "white")
    pen = ImageDraw.Draw(canvas)
    if shape == "circle":
        pen.ellipse(((cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k), fill=(255, 0, 0))
    else:
        pen.polygon(shapes.polygon(shape, cx * k, cy * k, r * k, angle), fill=(255, 0, 0))
    drawn = shapes.preprocess(canvas)
    assert (drawn - generated).abs().mean() < 0.03  # of a range of 2


def test_a_digit_from_the_dataset_drawn_large_in_dark_ink_comes_back_the_same():
    images, _ = digits.source_digits()
    differences, correlations = [], []
    for original in images[::40]:
        drawn = Image.fromarray((255 - original / 16 * 255).astype(np.uint8)).resize((200, 200), Image.BILINEAR)
        levels = (digits.preprocess(drawn)[0] * 0.5 + 0.5).numpy() * 16
        differences.append(np.abs(levels - original).mean())
        correlations.append(np.corrcoef(levels.ravel(), original.ravel())[0, 1])
    assert np.mean(differences) < 3
    assert np.median(correlations) > 0.85


def test_a_thin_pen_digit_is_thickened_to_the_datasets_ink():
    canvas = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(canvas).line([(90, 60), (210, 60), (130, 250)], fill=0, width=6)  # a 7
    levels = (digits.preprocess(canvas)[0] * 0.5 + 0.5) * 16
    images, _ = digits.source_digits()
    least = np.percentile(images.sum((1, 2)), 1)
    assert float(levels.sum()) >= 0.8 * least


def test_a_light_on_dark_picture_is_not_inverted():
    canvas = Image.new("L", (100, 100), 0)
    ImageDraw.Draw(canvas).line([(50, 10), (50, 90)], fill=255, width=12)  # a 1
    x = digits.preprocess(canvas)[0]
    assert x[0, 0] == -1.0  # the corner stays background
    assert x[:, 3:5].max() == 1.0  # the middle columns carry the stroke
