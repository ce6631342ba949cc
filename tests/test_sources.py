"""The image folder and .npz sources (aedepth.sources): reading them as torchvision and numpy
do, their shapes reaching the model, and each kind of bad data refused in one line naming the
file, at parse time (ConfigError) where the listing or headers show it, else in the prepare
job (a UserFacingError)."""

from __future__ import annotations

import base64
import copy
import io
import os
import subprocess
import sys
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from source_data import (
    DIGIT_CLASSES,
    SHAPE_CLASSES,
    digits,
    lying_header,
    npy_bytes,
    write_npz_members,
    shapes,
    write_digits_folder,
    write_image_folder,
    write_shapes_npz,
)
from conftest import REPO

from aedepth import sources
from aedepth.config import (
    ConfigError,
    coerce_cli_lists,
    data_folder,
    data_settings,
    image_shape,
    load_schema,
    validate_config,
)
from aedepth.data import image_shape as shape_of_images
from aedepth.data import load_dataset, save_dataset
from aedepth.explorer import thumbnail_uri, tooltip
from aedepth.grid import MNIST_SHAPE, build_grid, parameter_count, training_hparams
from aedepth.jobs import UserFacingError
from aedepth.model import build_model

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULTS = yaml.safe_load((REPO / "config.yaml").read_text())


def config_with(**changes):
    config = copy.deepcopy(DEFAULTS)
    config.update(changes)
    return coerce_cli_lists(config)


def error_of(**changes) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config(config_with(**changes), SCHEMA)
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    return write_digits_folder(tmp_path_factory.mktemp("digits") / "digits")


def small_folder(root, sizes=None, count=3):
    """An image folder of 3 grey classes, `count` 8x8 images each per split; `sizes` {index:
    (w, h)} gives some images another size."""
    images = np.random.default_rng(0).integers(0, 256, (6 * count, 8, 8), dtype=np.uint8)
    labels = np.arange(6 * count) % 3
    write_image_folder(root, images, labels, test_every=2)
    for index, size in (sizes or {}).items():
        split = "test" if index % 2 == 0 else "train"
        path = root / split / str(labels[index]) / f"{index:05d}.png"
        Image.fromarray(images[index]).resize(size).save(path)
    return root


# --- an image folder ----------------------------------------------------------------------------


def test_the_extensions_are_torchvisions():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    assert sources.IMAGE_EXTENSIONS == IMG_EXTENSIONS


def test_an_image_folder_reads_as_torchvisions_imagefolder(digit_folder):
    from torchvision.datasets import ImageFolder

    arrays = sources.load_image_folder(digit_folder)
    assert sources.folder_classes(digit_folder) == DIGIT_CLASSES
    for split in sources.SPLITS:
        reference = ImageFolder(str(digit_folder / split))
        assert reference.classes == DIGIT_CLASSES
        assert arrays[f"y_{split}"].tolist() == reference.targets
        for position in (0, 17, len(reference) - 1):
            image, _ = reference[position]
            assert np.array_equal(arrays[f"x_{split}"][position], np.asarray(image.convert("L")))
    images, labels = digits()
    assert arrays["x_train"].shape == (1437, 8, 8) and arrays["x_test"].shape == (360, 8, 8)
    assert arrays["x_train"].dtype == np.uint8
    assert sorted(arrays["x_test"].sum(axis=(1, 2))) == sorted(images[::5].sum(axis=(1, 2)))


def test_an_image_folder_config_gets_its_classes_shape_sizes_and_own_data_folder(digit_folder):
    config = config_with(source=str(digit_folder), dataset="digits")
    validate_config(config, SCHEMA)
    assert data_settings(config)["classes"] == DIGIT_CLASSES
    assert image_shape(config) == (8, 8, 1)
    assert data_folder(config).startswith("results/data/digits-imagefolder-")
    assert sources.source_sizes(str(digit_folder)) == (1437, 360)
    assert len(sources.source_files(str(digit_folder))) == 1797


def test_colour_images_read_as_three_channels(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (12, 5, 7, 3), dtype=np.uint8)
    write_image_folder(tmp_path / "rgb", images, np.arange(12) % 2, test_every=3)
    arrays = sources.load_image_folder(tmp_path / "rgb")
    assert arrays["x_train"].shape == (8, 5, 7, 3)
    assert sources.source_shape(str(tmp_path / "rgb")) == (5, 7, 3)


def test_mixed_sizes_name_the_first_odd_file(tmp_path):
    # in ImageFolder's order (class 0's images, then class 1's, ...) train/1/00007.png comes
    # before train/2/00005.png; the first image is train/0/00003.png
    root = small_folder(tmp_path / "mixed", sizes={5: (9, 8), 7: (8, 9)})
    odd = r"train/1/00007\.png: 8x9 pixels, but \S*train/0/00003\.png has 8x8"
    with pytest.raises(UserFacingError, match=odd):
        sources.load_image_folder(root)


@pytest.mark.parametrize("content", [b"not a png at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_an_unreadable_image_is_named(tmp_path, content):
    root = small_folder(tmp_path / "bad")
    (root / "train" / "1" / "00007.png").write_bytes(content)
    with pytest.raises(UserFacingError, match=r"train/1/00007\.png: not a readable image"):
        sources.load_image_folder(root)


def test_an_unreadable_first_image_is_refused_at_parse_time(tmp_path):
    root = small_folder(tmp_path / "bad")
    (root / "train" / "0" / "00001.png").write_text("hello")
    assert "00001.png: not a readable image" in error_of(source=str(root), dataset="x")


def test_an_empty_class_folder_is_refused_at_parse_time(tmp_path):
    root = small_folder(tmp_path / "empty")
    (root / "train" / "3").mkdir()
    (root / "train" / "3" / "notes.txt").write_text("no images here")
    message = error_of(source=str(root), dataset="x")
    assert message.startswith(f"config key 'source': {root / 'train' / '3'}: an empty class folder")


def test_a_test_class_the_training_split_lacks_is_refused(tmp_path):
    root = small_folder(tmp_path / "extra")
    (root / "test" / "9").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "test" / "9" / "a.png")
    assert f"{root / 'test' / '9'}: a test class the training split lacks" in error_of(
        source=str(root), dataset="x"
    )


def png_bomb(width: int, height: int) -> bytes:
    """A PNG header declaring width x height grey pixels, and almost no data: Pillow reads the
    size when it opens the file, before any pixel is decoded."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.mark.parametrize("pixels", [200_000, 400_000])  # past the limit (a warning), twice past
def test_a_decompression_bomb_is_named(tmp_path, monkeypatch, pixels):
    # Pillow's limit scaled down (the real one is 89 M pixels) so that the test stays small;
    # the same check as with the default
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150_000)
    root = small_folder(tmp_path / "bomb")
    (root / "test" / "2" / "00002.png").write_bytes(png_bomb(pixels // 100, 100))
    with pytest.raises(UserFacingError, match=r"00002\.png: more pixels than Pillow's limit"):
        sources.load_image_folder(root)
    (root / "train" / "0" / "00001.png").write_bytes(png_bomb(pixels // 100, 100))
    assert "00001.png: more pixels than Pillow's limit of 150,000" in error_of(
        source=str(root), dataset="x"
    )


def test_a_real_size_bomb_is_refused_with_pillows_own_limit(tmp_path):
    root = small_folder(tmp_path / "bomb")
    (root / "train" / "0" / "00001.png").write_bytes(png_bomb(20_000, 20_000))  # 400 M pixels
    assert "00001.png: more pixels than Pillow's limit of 89,478,485" in error_of(
        source=str(root), dataset="x"
    )


def test_a_folder_without_train_and_test_is_read_as_idx_files(tmp_path):
    (tmp_path / "flat").mkdir()
    assert "lacks train-images-idx3-ubyte" in error_of(source=str(tmp_path / "flat"))


def test_only_test_is_refused(tmp_path):
    (tmp_path / "half" / "test" / "a").mkdir(parents=True)
    assert "half/train: not a folder" in error_of(source=str(tmp_path / "half"), dataset="x")


# --- pixel modes ---------------------------------------------------------------------------------


def grey_first_folder(root, odd: Image.Image):
    """small_folder with train/2/00002.png (after the grey first image) replaced by `odd`."""
    small_folder(root)
    odd.save(root / "train" / "2" / "00002.png")
    return root


def test_a_palette_of_greys_reads_as_grey_and_a_coloured_palette_as_colour(tmp_path):
    levels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    grey = Image.fromarray(levels).convert("P")
    colour = Image.fromarray(np.stack([levels, levels // 2, 255 - levels], axis=2)).quantize(64)
    for name, image, channels in (("grey", grey, 1), ("colour", colour, 3)):
        path = tmp_path / f"{name}.png"
        image.save(path)
        assert Image.open(path).mode == "P"
        assert sources.image_shape_of(path) == (8, 8, channels)
    root = grey_first_folder(tmp_path / "palette", grey)
    x = sources.load_image_folder(root)["x_train"]
    assert x.ndim == 3
    position = [p.name for p, _ in sources.folder_files(root)["train"]].index("00002.png")
    assert np.array_equal(x[position], levels)


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped(tmp_path):
    wide = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1040  # 0 .. 65,520
    root = grey_first_folder(tmp_path / "wide", Image.fromarray(wide))
    assert Image.open(root / "train" / "2" / "00002.png").mode == "I;16"
    x = sources.load_image_folder(root)["x_train"]
    position = [p.name for p, _ in sources.folder_files(root)["train"]].index("00002.png")
    assert np.array_equal(x[position], np.rint(wide / 257).astype(np.uint8))


def test_a_colour_image_after_a_grey_first_is_named_and_rgb_of_greys_is_grey(tmp_path):
    levels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    greyish = Image.fromarray(np.stack([levels] * 3, axis=2))
    root = grey_first_folder(tmp_path / "greyish", greyish)
    position = [p.name for p, _ in sources.folder_files(root)["train"]].index("00002.png")
    assert np.array_equal(sources.load_image_folder(root)["x_train"][position], levels)
    coloured = Image.fromarray(np.stack([levels, levels, levels + 1], axis=2))
    root = grey_first_folder(tmp_path / "coloured", coloured)
    with pytest.raises(
        UserFacingError,
        match=r"train/2/00002\.png: a colour image, but \S*train/0/00003\.png, the first, is grey",
    ):
        sources.load_image_folder(root)


def test_a_grey_image_among_colour_ones_is_repeated_in_three_channels(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    root = write_image_folder(tmp_path / "rgb", images, np.arange(6) % 2, test_every=3)
    levels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(levels).save(root / "train" / "1" / "00005.png")
    arrays = sources.load_image_folder(root)
    position = [p.name for p, _ in sources.folder_files(root)["train"]].index("00005.png")
    assert np.array_equal(arrays["x_train"][position], np.stack([levels] * 3, axis=2))


def test_float_pixels_are_refused_naming_the_file(tmp_path):
    root = small_folder(tmp_path / "float")
    Image.fromarray(np.ones((8, 8), np.float32)).save(root / "train" / "0" / "00003.tiff")
    (root / "train" / "0" / "00003.png").unlink()
    assert "00003.tiff: floating-point pixels have no fixed range" in error_of(
        source=str(root), dataset="x"
    )


# --- a folder of class folders ------------------------------------------------------------------


def write_tree(root, per_class=(10, 7, 3)):
    """root/<class>/<n>.png, no train/ or test/: `per_class` distinct 8x8 grey images each."""
    for label, count in enumerate(per_class):
        (root / f"class{label}").mkdir(parents=True, exist_ok=True)
        for n in range(count):
            image = np.full((8, 8), 10 * label + n, np.uint8)
            Image.fromarray(image).save(root / f"class{label}" / f"{n:03d}.png")
    return root


def test_a_folder_of_class_folders_keeps_a_fifth_of_each_class_for_testing(tmp_path):
    from torchvision.datasets import ImageFolder

    root = write_tree(tmp_path / "tree")
    files = sources.folder_files(root)
    assert sources.source_kind(str(root)) == sources.IMAGE_FOLDER
    assert sources.folder_classes(root) == ImageFolder(str(root)).classes
    tested = [sum(1 for _, label in files["test"] if label == c) for c in range(3)]
    assert tested == [2, 1, 1]  # round(0.2 * n)
    # every image once, each split in ImageFolder's order
    reference = [(Path(path), label) for path, label in ImageFolder(str(root)).samples]
    assert sorted(files["train"] + files["test"]) == sorted(reference)
    for split in sources.SPLITS:
        assert files[split] == [entry for entry in reference if entry in files[split]]
    arrays = sources.load_image_folder(root)
    assert arrays["x_train"].shape == (16, 8, 8) and arrays["x_test"].shape == (4, 8, 8)


def test_the_tree_split_is_seeded_per_class(tmp_path):
    root = write_tree(tmp_path / "tree")
    before = sources.folder_files(root)["test"]
    assert sources.folder_files(write_tree(tmp_path / "again"))["test"] == [
        (tmp_path / "again" / path.relative_to(root), label) for path, label in before
    ]
    # new images in one class move no other class's test images
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "class1" / "100.png")
    after = sources.folder_files(root)["test"]
    assert [e for e in after if e[1] != 1] == [e for e in before if e[1] != 1]


def test_a_tree_config_gets_its_classes_sizes_and_a_class_too_small_is_refused(tmp_path):
    root = write_tree(tmp_path / "tree", per_class=(20, 15, 10, 10, 10))
    config = config_with(source=str(root), dataset="tree")
    validate_config(config, SCHEMA)
    assert data_settings(config)["classes"] == [f"class{n}" for n in range(5)]
    assert sources.source_sizes(str(root)) == (52, 13)
    assert data_folder(config).startswith("results/data/tree-imagefolder-")
    root = write_tree(tmp_path / "small", per_class=(10, 2))
    assert f"{root / 'class1'}: 2 image(s); a folder without train/ and test/ keeps 20%" in (
        error_of(source=str(root), dataset="x")
    )


@pytest.mark.parametrize("subfolder", ["raw", "train"])
def test_a_folder_of_idx_files_with_a_subfolder_is_still_idx(tmp_path, subfolder):
    (tmp_path / "idx" / subfolder).mkdir(parents=True)
    (tmp_path / "idx" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert sources.source_kind(str(tmp_path / "idx")) == sources.IDX


# --- an .npz ------------------------------------------------------------------------------------


def test_an_npz_source_reads_its_arrays_and_classes(tmp_path):
    path = write_shapes_npz(tmp_path / "shapes.npz")
    config = config_with(source=str(path), dataset="shapes")
    validate_config(config, SCHEMA)
    assert data_settings(config)["classes"] == SHAPE_CLASSES
    assert image_shape(config) == (32, 32, 3)
    assert data_folder(config).startswith("results/data/shapes-npz-")
    arrays = sources.load_source(str(path), [])
    assert arrays["x_train"].shape == (1000, 32, 32, 3) and arrays["y_test"].shape == (200,)
    save_dataset(tmp_path / "dataset.npz", arrays, classes=None)
    assert shape_of_images(load_dataset(tmp_path / "dataset.npz")["x_test"]) == (32, 32, 3)


def test_npz_class_names_from_the_config_or_the_labels(tmp_path):
    path = write_shapes_npz(tmp_path / "plain.npz", n_train=50, n_test=20)
    names = [f"c{k}" for k in range(10)]
    assert (
        data_settings(config_with(source=str(path), dataset="s", classes=names))["classes"] == names
    )
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in sources.NPZ_ARRAYS}
    np.savez(tmp_path / "nameless.npz", **arrays)
    config = config_with(source=str(tmp_path / "nameless.npz"), dataset="s")
    assert data_settings(config)["classes"] == DIGIT_CLASSES


def test_a_single_channel_axis_is_dropped(tmp_path):
    x = np.zeros((30, 6, 6, 1), np.uint8)
    y = np.arange(30) % 3
    np.savez(tmp_path / "g.npz", x_train=x, y_train=y, x_test=x[:12], y_test=y[:12])
    assert sources.load_source(str(tmp_path / "g.npz"), [])["x_train"].shape == (30, 6, 6)
    assert sources.source_shape(str(tmp_path / "g.npz")) == (6, 6, 1)


def npz_with(tmp_path, **changes):
    x = np.zeros((40, 6, 6), np.uint8)
    y = np.arange(40) % 4
    arrays = {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]} | changes
    path = tmp_path / "data.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"y_train": np.array([0, 1, 2, 3, {"a": 1}] * 8, dtype=object)},
            "y_train is an object array (it needs pickle, never loaded)",
        ),
        ({"classes": np.array(["a", None, "c", "d"], dtype=object)}, "classes is an object array"),
        (
            {"y_test": np.arange(20) % 4 - 1},
            "y_test holds label -1, out of range: use labels 0 to K-1 for K classes, K at most 1,000",
        ),
        (
            {"classes": np.array(["a", "b", "c"])},
            "y_train holds label 3, out of range: use labels 0 to 2 (3 class names)",
        ),
        ({"y_test": np.arange(20) % 5}, "y_test holds class 4 ('4'), which y_train lacks"),
        ({"y_test": None}, "lacks y_test"),
        ({"x_test": np.zeros((20, 6, 6), np.float32)}, "x_test is float32 (20, 6, 6): give uint8"),
        ({"x_test": np.zeros((20, 6, 5), np.uint8)}, "x_train's images are (6, 6, 1) (H, W, C)"),
        ({"y_test": np.zeros(19, np.int64)}, "y_test is int64 (19,): give 20 integer labels"),
    ],
    ids=[
        "object labels",
        "object classes",
        "negative",
        "past the names",
        "test class",
        "missing",
        "float",
        "sizes",
        "count",
    ],
)
def test_bad_npz_is_refused_at_parse_time(tmp_path, changes, message):
    source = npz_with(tmp_path, **changes)
    text = error_of(source=source, dataset="x")
    assert text.startswith(f"config key 'source': {source}: ") and message in text


def test_labels_past_the_configured_names_are_refused(tmp_path):
    source = npz_with(tmp_path)
    assert "y_train holds label 2, out of range: use labels 0 to 1 (2 class names)" in error_of(
        source=source, dataset="x", classes=["a", "b"]
    )


def test_the_prepare_job_refuses_what_parse_time_does(tmp_path):
    source = npz_with(tmp_path, y_test=np.arange(20) % 5)
    with pytest.raises(UserFacingError, match=r"y_test holds class 4 \('4'\), which y_train lacks"):
        sources.load_source(source, [])


def test_not_an_npz_is_named(tmp_path):
    (tmp_path / "junk.npz").write_text("hello")
    assert "junk.npz: not a readable .npz" in error_of(
        source=str(tmp_path / "junk.npz"), dataset="x"
    )
    assert "no such .npz file" in error_of(source=str(tmp_path / "none.npz"), dataset="x")


def test_classes_only_with_an_npz_and_a_folder_name_as_dataset(tmp_path, digit_folder):
    assert "names the classes of an .npz source only" in error_of(classes=["a"])
    assert "config key 'dataset' = 'a/b' names the data's folder" in error_of(
        source=str(digit_folder), dataset="a/b"
    )


# --- hostile data: bounded parse time, links, names (#34) --------------------------------------


def labelled(tmp_path, y_train, **extra):
    """An .npz of 6x6 images with these training labels, the first four the test split's."""
    x = np.zeros((len(y_train), 6, 6), np.uint8)
    arrays = {"x_train": x, "y_train": y_train, "x_test": x[:4], "y_test": y_train[:4]}
    return npz_with(tmp_path, **(arrays | extra))


@pytest.mark.parametrize(
    ("label", "shown"),
    [(np.int64(10**9), "1000000000"), (np.uint64(2**64 - 1), "18446744073709551615")],
    ids=["a billion", "uint64 -1"],
)
def test_a_huge_label_is_refused_before_a_class_list_is_built(tmp_path, label, shown):
    y = np.arange(8, dtype=label.dtype) % 4
    y[5] = label
    text = error_of(source=labelled(tmp_path, y), dataset="x")
    assert (
        f"y_train holds label {shown}, out of range: use labels 0 to K-1 for K classes, K at most 1,000"
        in text
    )


def test_a_configured_class_name_is_checked_and_blamed_on_classes(tmp_path):
    source = labelled(tmp_path, np.arange(8) % 2)
    text = error_of(source=source, dataset="x", classes=["a", "b\nc"])
    assert text == (
        "config key 'classes': class name 'b\\nc' holds a control character (a line break, a "
        "tab, ...): rename it without"
    )


def test_more_class_names_than_the_maximum_are_refused(tmp_path):
    names = np.array([f"c{k}" for k in range(1001)])
    text = error_of(source=labelled(tmp_path, np.arange(8) % 4, classes=names), dataset="x")
    assert "classes holds 1,001 names, more than the 1,000 classes aedepth takes" in text


def test_sparse_labels_are_refused_as_a_gap_not_as_too_few_images(tmp_path):
    text = error_of(source=labelled(tmp_path, np.arange(9) % 3 * 100), dataset="x")
    assert "class 1 ('1') has no images: number the classes 0 to 200 without gaps" in text


def test_duplicate_class_names_are_refused(tmp_path):
    names = np.array(["cat", "dog", "cat", "eel"])
    text = error_of(source=labelled(tmp_path, np.arange(8) % 4, classes=names), dataset="x")
    assert "classes: class name 'cat' names classes 0 and 2: give each class its own name" in text


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_split_of_one_class_is_refused_before_training(tmp_path, split):
    y = np.arange(8) % 4 if split == "test" else np.zeros(8, np.int64)
    text = error_of(source=labelled(tmp_path, y, y_test=np.zeros(4, np.int64)), dataset="x")
    assert f"the {split} split holds one class ('0'): the metrics compare classes" in text
    root = small_folder(tmp_path / "folder")
    for name in ("1", "2"):
        for image in (root / "test" / name).iterdir():
            image.unlink()
        (root / "test" / name).rmdir()
    assert "the test split holds one class ('0')" in error_of(source=str(root), dataset="x")


def test_a_member_declaring_more_than_the_bound_is_refused_before_decompression(tmp_path):
    arrays = {"x_train": np.zeros((4, 6, 6), np.uint8), "y_train": np.arange(4)}
    members = {k: npy_bytes(v) for k, v in arrays.items()} | {
        "x_test": lying_header((2**40, 6, 6), np.uint8)
    }
    source = write_npz_members(tmp_path / "bomb.npz", members | {"y_test": lying_header((2**40,))})
    text = error_of(source=source, dataset="x")
    assert (
        "x_test is uint8 (1099511627776, 6, 6), 39,582,418,599,936 bytes, more than the 17,179,869,184 an .npz member may hold"
        in text
    )


@pytest.mark.parametrize("compress", [True, False])
def test_member_data_shorter_than_its_header_is_one_line(tmp_path, compress):
    x = np.zeros((8, 6, 6), np.uint8)
    members = {
        "x_train": npy_bytes(x),
        "y_train": npy_bytes(np.arange(8) % 4),
        "x_test": npy_bytes(x),
    }
    members["y_test"] = npy_bytes(np.arange(8) % 4)[:-16]  # two labels short
    source = write_npz_members(tmp_path / "short.npz", members, compress)
    text = error_of(source=source, dataset="x")
    assert (
        "y_test holds 48 bytes of data, fewer than the 64 its header declares (int64 (8,)): the file is truncated"
        in text
    )
    with pytest.raises(UserFacingError, match="fewer than the 64 its header declares"):
        sources.load_source(source, [])


def test_more_images_than_a_split_may_hold_are_refused_from_the_header(tmp_path):
    members = {"x_train": lying_header((10**8, 1, 1), np.uint8), "y_train": lying_header((10**8,))}
    members |= {
        "x_test": npy_bytes(np.zeros((4, 1, 1), np.uint8)),
        "y_test": npy_bytes(np.arange(4)),
    }
    source = write_npz_members(tmp_path / "many.npz", members)
    # the headers lie about the data (none behind them): refused for that first
    assert "x_train holds 0 bytes of data, fewer than the 100,000,000" in error_of(
        source=source, dataset="x"
    )
    monkey = pytest.MonkeyPatch()
    monkey.setattr(sources, "MAX_IMAGES", 3)
    try:
        text = error_of(source=npz_with(tmp_path), dataset="x")
    finally:
        monkey.undo()
    assert "x_train holds 40 images, more than the 3 a split may hold: use fewer" in text


LABEL_BOMB = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a guard that fails must not take the machine
from aedepth.sources import SourceError, npz_classes
started = time.perf_counter()
try:
    npz_classes(sys.argv[1], [])
except SourceError as error:
    print(str(error).split(": ", 1)[1])
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(round(time.perf_counter() - started, 3), peak)
"""


def test_ten_million_labels_ending_in_a_billion_are_refused_in_little_memory(tmp_path):
    """The labels are read in chunks: 80 MB of them (a 0.1 MB file) never sit in memory at once."""
    n = 10_000_000
    y = np.zeros(n, np.int64)
    y[:4], y[-1] = np.arange(4), 10**9
    x = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.uint8, (n, 1, 1))
    del x
    members = {"x_train": (tmp_path / "x.npy").read_bytes(), "y_train": npy_bytes(y)}
    del y
    members |= {
        "x_test": npy_bytes(np.zeros((4, 1, 1), np.uint8)),
        "y_test": npy_bytes(np.arange(4)),
    }
    source = write_npz_members(tmp_path / "bomb.npz", members)
    del members
    out = subprocess.run(
        [sys.executable, "-c", LABEL_BOMB, source],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith("y_train holds label 1000000000, out of range"), out
    _, peak_kb = out[1].split()  # the time is printed for a reader, not asserted (load varies)
    assert int(peak_kb) < 200_000, out


def linked_folder(tmp_path):
    """small_folder with train/0/ (3 images) the class links are made in."""
    return small_folder(tmp_path / "linked")


@pytest.mark.parametrize(
    ("target", "name", "message"),
    [
        (".", "loop", "which is read already (a loop, another class's images, or a second copy)"),
        ("..", "up", "which is read already"),
        ("../1", "other", "which is read already"),
        ("../../../outside", "out", "outside the source folder"),
        ("self", "self", "a symbolic link that loops"),
        ("nowhere", "gone.png", "a symbolic link that is broken"),
    ],
    ids=["loop", "up", "another class", "outside", "self-link", "broken"],
)
def test_a_link_out_of_its_place_is_refused_naming_it(tmp_path, target, name, message):
    root = linked_folder(tmp_path)
    (tmp_path / "outside").mkdir()
    os.symlink(target, root / "train" / "0" / name)
    text = error_of(source=str(root), dataset="x")
    assert f"{root / 'train' / '0' / name}: a symbolic link" in text and message in text


def test_two_links_to_each_other_end_at_once(tmp_path):
    root = linked_folder(tmp_path)
    os.symlink("b", root / "train" / "0" / "a")
    os.symlink("a", root / "train" / "0" / "b")
    assert "a symbolic link that loops" in error_of(source=str(root), dataset="x")
    (root / "train" / "0" / "a").unlink()
    (root / "train" / "0" / "b").unlink()
    os.symlink(".", root / "train" / "0" / "x")
    os.symlink(".", root / "train" / "0" / "y")  # os.walk took 2^40 paths through these
    assert "which is read already" in error_of(source=str(root), dataset="x")


@pytest.mark.parametrize(("link", "target"), [("train/3", "1"), ("train/3", "../../outside")])
def test_a_class_folder_linked_to_another_or_outside_is_refused(tmp_path, link, target):
    root = linked_folder(tmp_path)
    (tmp_path / "outside").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "outside" / "a.png")
    os.symlink(target, root / link)
    text = error_of(source=str(root), dataset="x")
    why = "which another class folder reads already" if target == "1" else "outside the source"
    assert f"{root / link}: " in text and why in text, text


def test_a_link_to_images_kept_beside_the_splits_is_followed(tmp_path):
    root = linked_folder(tmp_path)
    (root / "pool").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "pool" / "extra.png")
    os.symlink("../../pool", root / "train" / "0" / "more")
    os.symlink("../../pool/extra.png", root / "train" / "1" / "extra.png")
    text = error_of(source=str(root), dataset="x")
    assert (
        f"{root / 'train' / '1' / 'extra.png'}: a symbolic link to {root / 'pool' / 'extra.png'}, which is read already"
        in text
    )
    (root / "train" / "1" / "extra.png").unlink()
    files = sources.folder_files(root)["train"]
    assert (root / "train" / "0" / "more" / "extra.png", 0) in files and len(files) == 10


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (os.fsdecode(b"caf\xe9.png"), "the name 'caf\\xe9.png' is not UTF-8 text"),
        ("a{b}.png", "the name 'a{b}.png' holds { or }, which Snakemake reads as a wildcard"),
    ],
    ids=["not UTF-8", "braces"],
)
def test_a_file_name_snakemake_cannot_carry_is_refused_naming_it(tmp_path, name, problem):
    root = small_folder(tmp_path / "names")
    os.rename(root / "train" / "1" / "00007.png", root / "train" / "1" / name)
    text = error_of(source=str(root), dataset="x")
    assert problem in text and "names/train/1/" in text


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (os.fsdecode(b"\xff"), "is not UTF-8 text"),
        ("{x}", "holds { or }"),
        ("a\nb", "control character"),
    ],
    ids=["not UTF-8", "braces", "line break"],
)
def test_a_class_name_snakemake_cannot_carry_is_refused_naming_it(tmp_path, name, problem):
    root = small_folder(tmp_path / "names")
    os.rename(root / "train" / "2", root / "train" / name)
    os.rename(root / "test" / "2", root / "test" / name)
    text = error_of(source=str(root), dataset="x")
    assert "names/train: class name " in text and problem in text


def test_more_class_folders_than_the_maximum_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_CLASSES", 2)
    text = error_of(source=str(small_folder(tmp_path / "many")), dataset="x")
    assert "train: 3 classes, more than the 2 aedepth takes: use fewer classes" in text


# --- the shape reaches the model, the figures and the explorer ----------------------------------


def test_the_image_size_reaches_the_parameter_count_and_the_model(digit_folder):
    config = config_with(
        source=str(digit_folder), dataset="digits", arms=["article", "matched_params"]
    )
    shape = image_shape(config)
    grid = build_grid(config, {"pca": type("B", (), {"seeded": False})}, shape)
    for run in grid.models:
        hparams = training_hparams(run, config, shape)
        assert hparams["image_shape"] == [8, 8, 1]
        assert hparams["params"] == parameter_count(hparams["widths"], 2, (8, 8, 1))
        assert hparams["params"] == sum(p.numel() for p in build_model(hparams).parameters())
    budget = parameter_count([500, 300, 100], 2, (8, 8, 1))
    matched = [
        training_hparams(r, config, shape) for r in grid.models if r["arm"] == "matched_params"
    ]
    assert all(abs(h["params"] - budget) <= 0.01 * budget for h in matched)


def test_mnist_hparams_have_no_image_shape():
    config = config_with(source="sample")
    grid = build_grid(config, {"pca": type("B", (), {"seeded": False})})
    hparams = training_hparams(grid.models[0], config, MNIST_SHAPE)
    assert "image_shape" not in hparams and hparams["params"] == 787_786


@pytest.mark.parametrize("shape", [(8, 8, 1), (5, 7, 1), (32, 32, 3)])
def test_a_thumbnail_of_any_shape_decodes_back(shape):
    image = np.random.default_rng(2).random(shape)
    uri = thumbnail_uri(image.ravel(), shape)
    decoded = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert decoded.size == (shape[1], shape[0])
    if shape[2] == 3:
        assert decoded.mode == "RGB"
        assert np.abs(np.asarray(decoded) / 255 - image).max() <= 1 / 30 + 1e-6
    else:
        grey = np.asarray(decoded.convert("L"), dtype=float) / 255
        assert np.abs(grey - (1 - image[..., 0])).max() <= 1 / 30 + 1e-2
    assert 'width="56" height="56"' in tooltip((8, 8, 1))


def test_the_reconstruction_grid_draws_colour_images_in_colour(tmp_path):
    from aedepth.plots import digit_grid, save_figure

    images = shapes(4, seed=0)[0] / 255.0
    rows = [("original", images), ("flattened", images.reshape(4, -1))]
    save_figure(digit_grid(rows, "colour", (32, 32, 3)), tmp_path / "grid.png", 60)
    figure = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"), dtype=int)
    spread = figure.max(axis=2) - figure.min(axis=2)
    assert (spread > 128).mean() > 0.01  # a grey figure has R = G = B everywhere
