"""Data sources beyond the IDX files: an image folder (torchvision's ImageFolder layout) and an
.npz of arrays. What a source is, its image shape, class names and sizes are read cheaply at
parse time (folder listings, one image header, .npy headers); the images themselves are
decoded once, in the prepare job, one at a time into a preallocated uint8 array.

Snakemake imports this module at parse time: Pillow is imported where an image is opened.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from aedepth.grid import MNIST_SHAPE
from aedepth.jobs import UserFacingError

DOWNLOAD, SAMPLE, IDX, IMAGE_FOLDER, NPZ = "download", "sample", "idx", "imagefolder", "npz"
SPLITS = ("train", "test")
# torchvision.datasets.folder.IMG_EXTENSIONS (a test keeps them equal): torchvision itself
# takes seconds to import, too slow for every Snakemake start.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# Pillow modes read as one grey channel (a palette of greys is one too); every other mode is
# converted to RGB. 16-bit grey is scaled to 8 bits: Pillow's convert("L") clips it at 255.
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
GREY_MODES = ("1", "L", "LA", *SIXTEEN_BIT)
# 32-bit integer and float pixels have no fixed range to map to 0-255.
NO_RANGE_MODES = ("I", "F")
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
# A folder of class folders without train/ and test/ keeps this fraction of each class for
# testing, chosen by a generator seeded with the split seed afresh for each class.
TREE_TEST_FRACTION, TREE_SPLIT_SEED = 0.2, 0
# the fewest images a class needs for a test image and a training image
TREE_LEAST_IMAGES = next(n for n in range(2, 1000) if 0 < round(n * TREE_TEST_FRACTION) < n)


class SourceError(UserFacingError):
    """A source that cannot be read as images and labels; str() is one line naming the file."""


def source_kind(source: str) -> str:
    """download, sample, npz (an .npz file), idx (a folder holding an IDX file, or an empty
    one: the four IDX files are asked for) or imagefolder (any other folder with subfolders:
    train/ and test/, or one folder per class)."""
    if source in (DOWNLOAD, SAMPLE):
        return source
    path = Path(source)
    if path.suffix == ".npz" and not path.is_dir():
        return NPZ
    if not path.is_dir():
        return IDX
    entries = list(os.scandir(path))
    if any(e.is_file() and "-idx" in e.name and "ubyte" in e.name for e in entries):
        return IDX
    return IMAGE_FOLDER if any(e.is_dir() for e in entries) else IDX


def _stamp(path: Path) -> int:
    """A change stamp of `path` for the caches: a test that rewrites a source is read anew."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


# --- an image folder ----------------------------------------------------------------------------


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively, links followed), sorted, as ImageFolder takes
    them: by extension (IMAGE_EXTENSIONS, any case), other files ignored."""
    found = []
    for root, _, names in sorted(os.walk(folder, followlinks=True)):
        found += [Path(root) / n for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def folder_classes(root: str | Path) -> list[str]:
    """The class names of an image folder: its train/ subfolders (or, without train/ and test/,
    its own), sorted (as ImageFolder)."""
    return list(_folder_listing(str(root), _stamps(root))[0])


def folder_files(root: str | Path) -> dict[str, list[tuple[Path, int]]]:
    """split -> [(image file, class index)], in ImageFolder's order; refused in one line
    (SourceError) where a split is missing, a class folder holds no image, or test/ holds a
    class train/ lacks. A folder of class folders is split by `tree_split`."""
    return _folder_listing(str(root), _stamps(root))[1]


def _stamps(root: str | Path) -> tuple[int, ...]:
    """Change stamps of the folder, its subfolders and theirs (where a file or class is added)."""
    root = Path(root)
    children = [Path(e.path) for e in os.scandir(root) if e.is_dir()] if root.is_dir() else []
    grandchildren = [Path(e.path) for child in children for e in os.scandir(child) if e.is_dir()]
    return tuple(_stamp(folder) for folder in [root, *children, *grandchildren])


@functools.lru_cache(maxsize=8)
def _folder_listing(root: str, _stamps: tuple[int, ...]) -> tuple[tuple[str, ...], dict]:
    base = Path(root)
    if not any((base / split).is_dir() for split in SPLITS):
        return _tree_listing(base)
    for split in SPLITS:
        if not (base / split).is_dir():
            raise SourceError(
                f"{base / split}: not a folder; an image folder holds train/<class>/ and "
                "test/<class>/ with the images"
            )
    classes = sorted(e.name for e in os.scandir(base / "train") if e.is_dir())
    if not classes:
        raise SourceError(
            f"{base / 'train'}: no class folders; put each class's images in train/<class>/"
        )
    files = {}
    for split in SPLITS:
        present = sorted(e.name for e in os.scandir(base / split) if e.is_dir())
        unknown = [name for name in present if name not in classes]
        if unknown:
            raise SourceError(
                f"{base / split / unknown[0]}: a test class the training split lacks; add "
                f"train/{unknown[0]}/ with its images or remove it"
            )
        files[split] = []
        for index, name in enumerate(classes):
            found = image_files(base / split / name) if name in present else []
            if name in present and not found:
                raise SourceError(
                    f"{base / split / name}: an empty class folder (no {', '.join(IMAGE_EXTENSIONS)} "
                    "file): add its images or remove it"
                )
            files[split] += [(path, index) for path in found]
    return tuple(classes), files


def _tree_listing(base: Path) -> tuple[tuple[str, ...], dict]:
    """The listing of a folder of class folders, split by `tree_split`."""
    classes = sorted(e.name for e in os.scandir(base) if e.is_dir())
    files = {split: [] for split in SPLITS}
    for index, name in enumerate(classes):
        found = image_files(base / name)
        if len(found) < TREE_LEAST_IMAGES:
            raise SourceError(
                f"{base / name}: {len(found)} image(s); a folder without train/ and test/ keeps "
                f"{TREE_TEST_FRACTION:.0%} of each class for testing, so each class needs "
                f"{TREE_LEAST_IMAGES} at least: add images, remove the folder, or split the "
                "images into train/<class>/ and test/<class>/ yourself"
            )
        for split, paths in zip(SPLITS, tree_split(found)):
            files[split] += [(path, index) for path in paths]
    return tuple(classes), files


def tree_split(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, test) of one class's images in a folder without train/ and test/: a fraction
    TREE_TEST_FRACTION of them (rounded) for testing, drawn by a generator seeded with
    TREE_SPLIT_SEED afresh for each class, so that another class's images never move them;
    both in the listing's order."""
    generator = np.random.default_rng(TREE_SPLIT_SEED)
    test_count = int(round(len(paths) * TREE_TEST_FRACTION))
    chosen = set(generator.permutation(len(paths))[:test_count].tolist())
    train = [path for position, path in enumerate(paths) if position not in chosen]
    test = [path for position, path in enumerate(paths) if position in chosen]
    return train, test


def _open_image(path: Path):
    """The image at `path`, opened lazily (header only); a file Pillow cannot read, or past its
    pixel limit (Image.MAX_IMAGE_PIXELS: a decompression bomb), refused naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # past the limit Pillow only warns; twice past it, it raises
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise SourceError(
            f"{path}: more pixels than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} (a "
            f"decompression bomb?): remove it or replace it with a small image ({e})"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise SourceError(
            f"{path}: not a readable image ({type(e).__name__}): remove or replace it"
        ) from None


def image_channels(path: Path, image) -> int:
    """1 for a grey image (a grey mode, or a palette of greys only), 3 for colour; an image
    whose pixels have no fixed range (32-bit integer or float) refused naming the file."""
    if image.mode in NO_RANGE_MODES:
        raise SourceError(
            f"{path}: {'32-bit integer' if image.mode == 'I' else 'floating-point'} pixels "
            "have no fixed range: save it with 8 or 16 bits per channel"
        )
    if image.mode in GREY_MODES:
        return 1
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        return 1 if palette[0::3] == palette[1::3] == palette[2::3] else 3
    return 3


def image_shape_of(path: Path) -> tuple[int, int, int]:
    """(height, width, channels) of the image file: 1 channel for grey, 3 for colour."""
    with _open_image(path) as image:
        width, height = image.size
        return height, width, image_channels(path, image)


def load_image_folder(root: str | Path) -> dict[str, np.ndarray]:
    """The images of an image folder as uint8 arrays (N, H, W) or (N, H, W, 3) with their class
    indices: decoded one at a time into one preallocated array per split. Every image must
    have the size of the first training image, and be grey where it is; the first that
    differs is named."""
    files = folder_files(root)
    first = files["train"][0][0]
    height, width, channels = image_shape_of(first)
    arrays = {}
    for split in SPLITS:
        entries = files[split]
        shape = (len(entries), height, width) + ((3,) if channels == 3 else ())
        x = np.empty(shape, dtype=np.uint8)
        for position, (path, _) in enumerate(entries):
            x[position] = _decode(path, (height, width), channels, first)
        arrays[f"x_{split}"] = x
        arrays[f"y_{split}"] = np.array([label for _, label in entries], dtype=np.int64)
    return arrays


def _decode(path: Path, size: tuple[int, int], channels: int, first: Path) -> np.ndarray:
    with _open_image(path) as image:
        if (image.height, image.width) != size:
            raise SourceError(
                f"{path}: {image.width}x{image.height} pixels, but {first} has "
                f"{size[1]}x{size[0]}: every image must have one size; resize or remove it"
            )
        own = image_channels(path, image)
        try:
            if own == 1 and image.mode in SIXTEEN_BIT:
                pixels = np.rint(np.asarray(image, dtype=np.float64) / 257).astype(np.uint8)
            else:
                pixels = np.asarray(image.convert("L" if own == 1 else "RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:  # a header that parses, data that does not
            raise SourceError(
                f"{path}: not a readable image ({type(e).__name__}: {e}): remove or replace it"
            ) from None
    if channels == 3 and own == 1:
        return np.repeat(pixels[..., None], 3, axis=2)
    if channels == 1 and own == 3:
        # an RGB file of grey pixels is grey; real colour would be lost
        if not (
            np.array_equal(pixels[..., 0], pixels[..., 1])
            and np.array_equal(pixels[..., 0], pixels[..., 2])
        ):
            raise SourceError(
                f"{path}: a colour image, but {first}, the first, is grey: every image must be "
                "grey or every image colour; convert it to grey, or the first to colour"
            )
        return pixels[..., 0]
    return pixels


# --- an .npz ------------------------------------------------------------------------------------


def npz_headers(path: str | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name -> (shape, dtype) of every array of an .npz, from the .npy headers alone."""
    return dict(_npz_headers(str(path), _stamp(Path(path))))


@functools.lru_cache(maxsize=8)
def _npz_headers(path: str, _stamp: int) -> tuple:
    headers = []
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(handle)
                headers.append((member.removesuffix(".npy"), (shape, dtype)))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise SourceError(
            f"{path}: not a readable .npz ({type(e).__name__}: {e}); write it with numpy.savez"
        ) from None
    return tuple(headers)


def check_npz(path: str | Path) -> tuple[int, int, int]:
    """The (height, width, channels) of an .npz's images, after checking from the headers that
    it holds x_train, y_train, x_test, y_test as uint8 images and integer labels, no object
    arrays; refused in one line (SourceError) otherwise."""
    headers = npz_headers(path)
    missing = [key for key in NPZ_ARRAYS if key not in headers]
    if missing:
        raise SourceError(
            f"{path}: lacks {', '.join(missing)}; an .npz source holds {', '.join(NPZ_ARRAYS)}"
        )
    for key, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise SourceError(
                f"{path}: {key} is an object array (it needs pickle, never loaded): save "
                "plain numeric arrays (and classes as strings)"
            )
    shapes = []
    for split in SPLITS:
        (x_shape, x_dtype), (y_shape, y_dtype) = headers[f"x_{split}"], headers[f"y_{split}"]
        grey_or_rgb = len(x_shape) == 3 or (len(x_shape) == 4 and x_shape[3] in (1, 3))
        if x_dtype != np.uint8 or not grey_or_rgb or 0 in x_shape:
            raise SourceError(
                f"{path}: x_{split} is {x_dtype} {x_shape}: give uint8 images (N, H, W) or "
                "(N, H, W, 1 or 3), N >= 1"
            )
        if len(y_shape) != 1 or y_dtype.kind not in "iu" or y_shape[0] != x_shape[0]:
            raise SourceError(
                f"{path}: y_{split} is {y_dtype} {y_shape}: give {x_shape[0]} integer labels, "
                f"one per image of x_{split}"
            )
        shapes.append(x_shape[1:3] + ((x_shape[3],) if len(x_shape) == 4 else (1,)))
    if shapes[0] != shapes[1]:
        raise SourceError(
            f"{path}: x_train's images are {shapes[0]} (H, W, C), x_test's {shapes[1]}: give "
            "both splits one image shape"
        )
    return shapes[0]


def npz_classes(path: str | Path, names: list[str]) -> list[str]:
    """The class names of an .npz source: `names` (the config's `classes`), else its own
    `classes` array (strings), else "0" to the largest label; its labels checked against
    them (SourceError: labels out of range, a test class the training split lacks)."""
    check_npz(path)
    with np.load(path, allow_pickle=False) as npz:
        y_train, y_test = npz["y_train"], npz["y_test"]
        own = npz["classes"] if "classes" in npz.files else None
    if not names and own is not None:
        if own.ndim != 1 or own.dtype.kind not in "US":
            raise SourceError(
                f"{path}: classes is {own.dtype} {own.shape}: give a 1-D array of class names"
            )
        names = [str(name) for name in own]
    check_labels(y_train, y_test, len(names) if names else None, str(path))
    return list(names) or [str(k) for k in range(int(y_train.max()) + 1)]


def check_labels(y_train: np.ndarray, y_test: np.ndarray, classes: int | None, where: str) -> None:
    """Labels 0 to classes - 1 (any >= 0 where `classes` is None), every test label also in
    the training split; refused in one line naming the first offending label."""
    for split, y in (("train", y_train), ("test", y_test)):
        bad = y[(y < 0) | (y >= (classes if classes is not None else math.inf))]
        if len(bad):
            allowed = f"0 to {classes - 1} ({classes} class names)" if classes else "0 or more"
            raise SourceError(
                f"{where}: y_{split} holds label {bad[0]}, out of range: use labels {allowed}"
            )
    lacking = np.setdiff1d(y_test, y_train)
    if len(lacking):
        raise SourceError(
            f"{where}: y_test holds class {lacking[0]}, which y_train lacks: the models and "
            "kNN never see it; add training images of it or drop it from the test split"
        )


def load_npz(path: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    """The arrays of an .npz source (allow_pickle=False), checked; (N, H, W, 1) becomes (N, H, W)."""
    npz_classes(path, names)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in NPZ_ARRAYS}
    for split in SPLITS:
        x = arrays[f"x_{split}"]
        if x.ndim == 4 and x.shape[3] == 1:
            arrays[f"x_{split}"] = x[..., 0]
    return arrays


# --- any source ---------------------------------------------------------------------------------


def source_shape(source: str) -> tuple[int, int, int]:
    """(height, width, channels) of the source's images: MNIST's for IDX files and the sample,
    else read from the first training image or the .npz's header."""
    kind = source_kind(source)
    if kind == IMAGE_FOLDER:
        return image_shape_of(folder_files(source)["train"][0][0])
    if kind == NPZ:
        return check_npz(source)
    return MNIST_SHAPE


def source_sizes(source: str) -> tuple[int, int]:
    """(training, test) images of an image folder or .npz source."""
    if source_kind(source) == NPZ:
        headers = npz_headers(source)
        return headers["x_train"][0][0], headers["x_test"][0][0]
    files = folder_files(source)
    return len(files["train"]), len(files["test"])


def source_files(source: str) -> list[Path]:
    """The files an image folder or .npz source reads: the prepare job's inputs."""
    if source_kind(source) == NPZ:
        return [Path(source)]
    return [path for split in SPLITS for path, _ in folder_files(source)[split]]


def load_source(source: str, names: list[str]) -> dict[str, np.ndarray]:
    """The arrays of an image folder or .npz source (the prepare job)."""
    if source_kind(source) == NPZ:
        return load_npz(source, names)
    return load_image_folder(source)
