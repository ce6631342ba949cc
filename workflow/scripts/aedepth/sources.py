"""Data sources beyond the IDX files: an image folder (torchvision's ImageFolder layout) and an
.npz of arrays. What a source is, its image shape, class names and sizes are read cheaply at
parse time (folder listings, one image header, .npy headers); the images themselves are
decoded once, in the prepare job, one at a time into a preallocated uint8 array.

Snakemake imports this module at parse time: Pillow is imported where an image is opened.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
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
# Bounds on what a source may declare, checked before anything of that size is built: classes
# (figures, the explorer and messages list them), characters of a class name, images of a
# split, and bytes of an .npz member once decompressed.
MAX_CLASSES = 1000
MAX_CLASS_NAME = 100
MAX_IMAGES = 10_000_000
MAX_NPZ_MEMBER = 16 << 30


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


# what a name may not hold: control characters, braces, surrogates (bytes that are not UTF-8)
_ODD_CHARACTER = re.compile(r"[\x00-\x1f\x7f{}\ud800-\udfff]")


def shown(text: str | Path) -> str:
    """`text` (a file or class name) as a message can print it: a name that is not UTF-8
    (Python's surrogate escapes) with its odd bytes as \\x.. escapes."""
    return os.fsencode(str(text)).decode("utf-8", "backslashreplace")


def _quoted(name: str) -> str:
    """`name` quoted on one line: control characters escaped, bytes that are not UTF-8 as
    \\x.. escapes."""
    if shown(name) == name:
        return repr(name)
    return repr(name.encode("utf-8", "surrogateescape"))[1:]  # b'...' less its b


def _name_problem(name: str) -> str | None:
    """Why Snakemake, the file system or a one-line message cannot carry `name`, or None."""
    if name and not _ODD_CHARACTER.search(name):
        return None  # the common case, in one search
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not UTF-8 text, which Snakemake cannot record: rename it in UTF-8"
    if not name:
        return "is empty: give the class a name"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds a control character (a line break, a tab, ...): rename it without"
    if "{" in name or "}" in name:
        return "holds { or }, which Snakemake reads as a wildcard: rename it without"
    return None


def _stamp(path: Path) -> int:
    """A change stamp of `path` for the caches: a test that rewrites a source is read anew."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


# --- an image folder ----------------------------------------------------------------------------


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively), sorted, as ImageFolder takes them: by
    extension (IMAGE_EXTENSIONS, any case), other files ignored; symbolic links as in
    `class_images`."""
    return class_images(Path(folder), [Path(folder)])[0]


def class_images(base: Path, folders: list[Path]) -> list[list[Path]]:
    """The image files of each class folder of a source folder `base`, each list in
    os.walk's sorted order (ImageFolder's). A symbolic link is followed only where it stays
    inside `base` and reaches nothing already read: no class folder (or a folder holding
    one), nothing another link reached. So no image is labelled by a class folder it does
    not live in, and none is read twice. A link that leaves `base`, revisits, loops or is
    broken is refused naming it, as is a name Snakemake cannot carry (not UTF-8, braces)."""
    read = _Claims()
    for folder in folders:
        real = os.path.realpath(folder)
        _within(base, folder, real)
        if read.overlaps(real):
            raise SourceError(
                f"{shown(folder)}: the folder {shown(real)}, which another class folder reads "
                "already (a symbolic link?): give each class folder its own images"
            )
        read.add(real)
    listings = [[] for _ in folders]
    pending = list(enumerate(folders))
    while pending:
        position, directory = pending.pop(0)  # in order: the same link is blamed every time
        listed, links = _real_walk(directory)
        listings[position] += listed
        for link in sorted(links):
            target = _link_target(link, base, read)
            if target is None:
                continue
            read.add(target)
            if os.path.isdir(target):
                pending.append((position, link))
            else:
                listings[position].append((str(link.parent), [link.name]))
    return [_sorted_files(folder, listing) for folder, listing in zip(folders, listings)]


class _Claims:
    """Real paths read so far; another overlaps them where it lies in one or holds one."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.holders: set[str] = set()  # every folder above a path read

    def add(self, path: str) -> None:
        self.paths.add(path)
        self.holders.update(_above(path))

    def overlaps(self, path: str, holding: bool = True) -> bool:
        """Whether `path` is or lies in a path read, or (`holding`) holds one."""
        if holding and path in self.holders:
            return True
        return any(folder in self.paths for folder in [path, *_above(path)])


def _above(path: str) -> list[str]:
    """The folders above a real path, up to the root."""
    folders = []
    while (parent := os.path.dirname(path)) != path:
        folders.append(parent)
        path = parent
    return folders


def _sorted_files(folder: Path, listing: list[tuple[str, list[str]]]) -> list[Path]:
    """The image files of a class folder's listing, in os.walk's sorted order; a name
    Snakemake cannot carry refused naming it."""
    merged: dict[str, list[str]] = {}
    for directory, names in listing:
        merged.setdefault(directory, []).extend(names)
    files = []
    for directory, names in sorted(merged.items()):
        if not names:
            continue
        below = os.path.relpath(directory, folder)
        for name in ([] if below == "." else below.split(os.sep)) + names:
            if problem := _name_problem(name):
                path = Path(directory) / (name if name in names else "")
                raise SourceError(f"{shown(path)}: the name {_quoted(name)} {problem}")
        files += [Path(directory) / name for name in sorted(names)]
    return files


def _real_walk(folder: Path) -> tuple[list[tuple[str, list[str]]], list[Path]]:
    """([(folder, its image file names)], the symbolic links met) under `folder`, links not
    followed."""
    listed, links, pending = [], [], [folder]
    while pending:
        directory = pending.pop()
        names = []
        for entry in os.scandir(directory):
            if entry.is_symlink():
                links.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                names.append(entry.name)
        listed.append((str(directory), names))
    return listed, links


def _within(base: Path, link: Path, target: str) -> None:
    top = os.path.realpath(base)
    if os.path.commonpath([top, target]) != top:
        raise SourceError(
            f"{shown(link)}: a symbolic link to {shown(target)}, outside the source folder "
            f"{shown(base)}: copy the images into it, or remove the link"
        )


def _link_target(link: Path, base: Path, read: _Claims) -> str | None:
    """The real path a link reaches; None for a link to a file that is no image (ignored,
    like any such file). Refused naming the link where it is broken or loops, leaves the
    source folder `base`, or reaches what is read already."""
    try:
        target = os.path.realpath(link, strict=True)
    except OSError as e:
        why = "loops" if e.errno == errno.ELOOP else "is broken"
        raise SourceError(
            f"{shown(link)}: a symbolic link that {why}: remove it or point it at an image"
        ) from None
    is_dir = os.path.isdir(target)
    if not is_dir and not link.name.lower().endswith(IMAGE_EXTENSIONS):
        return None
    _within(base, link, target)
    if read.overlaps(target, holding=is_dir):
        raise SourceError(
            f"{shown(link)}: a symbolic link to {shown(target)}, which is read already (a "
            "loop, another class's images, or a second copy): remove the link"
        )
    return target


def folder_classes(root: str | Path) -> list[str]:
    """The class names of an image folder: its train/ subfolders (or, without train/ and test/,
    its own), sorted (as ImageFolder)."""
    return list(_folder_listing(str(root), _stamps(root))[0])


def folder_files(root: str | Path) -> dict[str, list[tuple[Path, int]]]:
    """split -> [(image file, class index)], in ImageFolder's order; refused in one line
    (SourceError) where a split is missing, a class folder holds no image, or test/ holds a
    class train/ lacks. A folder of class folders is split by `tree_split`."""
    return _folder_listing(str(root), _stamps(root))[1]


def folder_counts(root: str | Path) -> dict[str, tuple[int, ...]]:
    """split -> images of each class of an image folder."""
    classes, files = _folder_listing(str(root), _stamps(root))
    return {
        split: tuple(np.bincount([k for _, k in files[split]], minlength=len(classes)).tolist())
        for split in SPLITS
    }


def _stamps(root: str | Path) -> tuple[int, ...]:
    """Change stamps of the folder, its subfolders and theirs (where a file or class is added)."""
    root = Path(root)
    children = [Path(e.path) for e in os.scandir(root) if e.is_dir()] if root.is_dir() else []
    grandchildren = [Path(e.path) for child in children for e in os.scandir(child) if e.is_dir()]
    return tuple(_stamp(folder) for folder in [root, *children, *grandchildren])


def _class_folders(folder: Path) -> list[str]:
    names = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    check_class_names(names, shown(folder))
    return names


@functools.lru_cache(maxsize=8)
def _folder_listing(root: str, _stamps: tuple[int, ...]) -> tuple[tuple[str, ...], dict]:
    base = Path(root)
    if not any((base / split).is_dir() for split in SPLITS):
        return _tree_listing(base)
    for split in SPLITS:
        if not (base / split).is_dir():
            raise SourceError(
                f"{shown(base / split)}: not a folder; an image folder holds train/<class>/ "
                "and test/<class>/ with the images"
            )
        _within(base, base / split, os.path.realpath(base / split))
    classes = _class_folders(base / "train")
    if not classes:
        raise SourceError(
            f"{shown(base / 'train')}: no class folders; put each class's images in train/<class>/"
        )
    present = {split: _class_folders(base / split) for split in SPLITS}
    for split in SPLITS:
        unknown = [name for name in present[split] if name not in classes]
        if unknown:
            raise SourceError(
                f"{shown(base / split / unknown[0])}: a test class the training split lacks; "
                f"add train/{shown(unknown[0])}/ with its images or remove it"
            )
    folders = [(split, k, base / split / c) for split in SPLITS for k, c in enumerate(classes)]
    folders = [entry for entry in folders if entry[2].name in present[entry[0]]]
    found = class_images(base, [folder for _, _, folder in folders])
    files = {split: [] for split in SPLITS}
    for (split, index, folder), paths in zip(folders, found):
        if not paths:
            raise SourceError(
                f"{shown(folder)}: an empty class folder (no {', '.join(IMAGE_EXTENSIONS)} "
                "file): add its images or remove it"
            )
        files[split] += [(path, index) for path in paths]
    _check_listing(base, classes, files)
    return tuple(classes), files


def _check_listing(base: Path, classes: list[str], files: dict) -> None:
    counts = {
        split: np.bincount([k for _, k in files[split]], minlength=len(classes)) for split in SPLITS
    }
    check_class_counts(classes, counts, shown(base))


def _tree_listing(base: Path) -> tuple[tuple[str, ...], dict]:
    """The listing of a folder of class folders, split by `tree_split`."""
    classes = _class_folders(base)
    files = {split: [] for split in SPLITS}
    for index, (name, found) in enumerate(
        zip(classes, class_images(base, [base / name for name in classes]))
    ):
        if len(found) < TREE_LEAST_IMAGES:
            raise SourceError(
                f"{shown(base / name)}: {len(found)} image(s); a folder without train/ and "
                f"test/ keeps {TREE_TEST_FRACTION:.0%} of each class for testing, so each class "
                f"needs {TREE_LEAST_IMAGES} at least: add images, remove the folder, or split "
                "the images into train/<class>/ and test/<class>/ yourself"
            )
        for split, paths in zip(SPLITS, tree_split(found)):
            files[split] += [(path, index) for path in paths]
    _check_listing(base, classes, files)
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

# Parse time reads an .npz's headers and its labels, nothing else, in bounded memory: the
# labels in chunks of this many, checked against the allowed range before anything is counted.
_LABEL_CHUNK = 1 << 18


def npz_headers(path: str | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name -> (shape, dtype) of the arrays an .npz source uses (NPZ_ARRAYS and `classes`),
    from their .npy headers alone; a member whose zip entry holds more or fewer bytes than
    its header declares, or past MAX_NPZ_MEMBER, is refused before anything is decompressed."""
    return {name: header[:2] for name, header in _npz_headers(str(path), _stamp(Path(path)))}


def _unreadable(path: str, error: BaseException) -> SourceError:
    text = " ".join(str(error).split())[:200]
    return SourceError(
        f"{path}: not a readable .npz ({type(error).__name__}: {text}); write it with numpy.savez"
    )


@functools.lru_cache(maxsize=8)
def _npz_headers(path: str, _stamp: int) -> tuple:
    """((name, (shape, dtype, data offset)), ...) of the members an .npz source uses."""
    headers = []
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            for name in (*NPZ_ARRAYS, "classes"):
                info = members.get(f"{name}.npy")
                if info is not None:
                    headers.append((name, _member_header(path, archive, info, name)))
    except SourceError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError) as e:
        raise _unreadable(path, e) from None
    return tuple(headers)


def _member_header(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str):
    """(shape, dtype, data offset) of one .npy member, its declared size checked."""
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(handle)
        offset = handle.tell()
    if dtype.hasobject:
        raise SourceError(
            f"{path}: {name} is an object array (it needs pickle, never loaded): save "
            "plain numeric arrays (and classes as strings)"
        )
    data = math.prod(shape) * dtype.itemsize
    if data > MAX_NPZ_MEMBER:
        raise SourceError(
            f"{path}: {name} is {dtype} {shape}, {data:,} bytes, more than the "
            f"{MAX_NPZ_MEMBER:,} an .npz member may hold: use less or smaller data"
        )
    if info.file_size != offset + data:
        held = "fewer" if info.file_size < offset + data else "more"
        raise SourceError(
            f"{path}: {name} holds {info.file_size - offset:,} bytes of data, {held} than the "
            f"{data:,} its header declares ({dtype} {shape}): the file is truncated or "
            "altered; write it again with numpy.savez"
        )
    return shape, dtype, offset


def check_npz(path: str | Path) -> tuple[int, int, int]:
    """The (height, width, channels) of an .npz's images, after checking from the headers that
    it holds x_train, y_train, x_test, y_test as uint8 images and integer labels, no object
    arrays, at most MAX_IMAGES images a split; refused in one line (SourceError) otherwise."""
    headers = npz_headers(path)
    missing = [key for key in NPZ_ARRAYS if key not in headers]
    if missing:
        raise SourceError(
            f"{path}: lacks {', '.join(missing)}; an .npz source holds {', '.join(NPZ_ARRAYS)}"
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
        if x_shape[0] > MAX_IMAGES:
            raise SourceError(
                f"{path}: x_{split} holds {x_shape[0]:,} images, more than the {MAX_IMAGES:,} "
                "a split may hold: use fewer"
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
    them (SourceError: labels out of range, a class without training images, a test class
    the training split lacks, fewer than two classes in a split)."""
    return list(npz_summary(path, names)[0])


def npz_summary(path: str | Path, names: list[str]) -> tuple[tuple[str, ...], dict]:
    """(class names, {split: images of each class}) of an .npz source, checked (npz_classes)."""
    return _npz_summary(str(path), _stamp(Path(path)), tuple(names))


@functools.lru_cache(maxsize=8)
def _npz_summary(path: str, _stamp: int, names: tuple[str, ...]) -> tuple:
    check_npz(path)
    headers = dict(_npz_headers(path, _stamp))
    try:
        with zipfile.ZipFile(path) as archive:
            if not names and "classes" in headers:
                names = _own_classes(path, archive, headers["classes"])
            check_class_names(names, f"{path}: classes" if names else path)
            limit = len(names) or MAX_CLASSES
            counts = {
                split: _label_counts(
                    path, archive, f"y_{split}", headers[f"y_{split}"], limit, names
                )
                for split in SPLITS
            }
    except SourceError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError) as e:
        raise _unreadable(path, e) from None
    classes = len(names) or int(np.flatnonzero(counts["train"] + counts["test"]).max()) + 1
    counts = {split: counts[split][:classes] for split in SPLITS}
    names = names or tuple(str(k) for k in range(classes))
    check_class_counts(names, counts, path)
    return names, {split: tuple(counts[split].tolist()) for split in SPLITS}


def _own_classes(path: str, archive: zipfile.ZipFile, header) -> tuple[str, ...]:
    """The .npz's `classes` array, its size bounded before it is read."""
    shape, dtype, offset = header
    if len(shape) != 1 or dtype.kind not in "US":
        raise SourceError(f"{path}: classes is {dtype} {shape}: give a 1-D array of class names")
    if shape[0] > MAX_CLASSES:
        raise SourceError(
            f"{path}: classes holds {shape[0]:,} names, more than the {MAX_CLASSES:,} classes "
            "aedepth takes: use fewer classes"
        )
    longest = dtype.itemsize // (4 if dtype.kind == "U" else 1)
    if longest > MAX_CLASS_NAME:
        raise SourceError(
            f"{path}: classes holds names of up to {longest:,} characters, more than "
            f"{MAX_CLASS_NAME}: use shorter names"
        )
    with archive.open("classes.npy") as handle:
        handle.read(offset)
        raw = handle.read(shape[0] * dtype.itemsize)
    own = np.frombuffer(raw, dtype=dtype, count=shape[0])
    try:
        return tuple(name.decode() if dtype.kind == "S" else str(name) for name in own)
    except UnicodeDecodeError:
        raise SourceError(
            f"{path}: classes holds a name that is not UTF-8 text: save the names as str"
        ) from None


def _label_counts(path, archive, key, header, limit: int, names) -> np.ndarray:
    """Images of each label 0 to `limit` - 1 in the labels `key`, read in chunks; a label
    outside that range refused naming it, before any count is made."""
    shape, dtype, offset = header
    counts = np.zeros(limit, dtype=np.int64)
    with archive.open(f"{key}.npy") as handle:
        handle.read(offset)
        left = shape[0]
        while left:
            step = min(left, _LABEL_CHUNK)
            raw = handle.read(step * dtype.itemsize)
            if len(raw) != step * dtype.itemsize:
                raise EOFError(f"{key} ends early")
            labels = np.frombuffer(raw, dtype=dtype)
            bad = labels[(labels < 0) | (labels >= limit)]
            if len(bad):
                allowed = (
                    f"0 to {limit - 1} ({limit} class names)"
                    if names
                    else f"0 to K-1 for K classes, K at most {limit:,}"
                )
                raise SourceError(
                    f"{path}: {key} holds label {bad[0]}, out of range: use labels {allowed}"
                )
            counts += np.bincount(labels.astype(np.intp, copy=False), minlength=limit)
            left -= step
    return counts


def check_class_names(names, where: str) -> None:
    """At most MAX_CLASSES distinct names of at most MAX_CLASS_NAME characters that files,
    Snakemake and one-line messages can carry: UTF-8 text, no control characters or braces."""
    if len(names) > MAX_CLASSES:
        raise SourceError(
            f"{where}: {len(names):,} classes, more than the {MAX_CLASSES:,} aedepth takes: "
            "use fewer classes"
        )
    seen = {}
    for index, name in enumerate(names):
        problem = _name_problem(name)
        if problem:
            raise SourceError(f"{where}: class name {_quoted(name)} {problem}")
        if len(name) > MAX_CLASS_NAME:
            raise SourceError(
                f"{where}: class name {_quoted(name)} has {len(name):,} characters, more than "
                f"{MAX_CLASS_NAME}: use a shorter name"
            )
        if name in seen:
            raise SourceError(
                f"{where}: class name {_quoted(name)} names classes {seen[name]} and {index}: "
                "give each class its own name"
            )
        seen[name] = index


def check_class_counts(names, counts: dict[str, np.ndarray], where) -> None:
    """What the models and metrics need of the classes: training images of every class (no
    test class without them, no gap in the labels), two classes at least in each split
    (silhouette, Davies-Bouldin)."""
    for index, name in enumerate(names):
        if not counts["train"][index] and counts["test"][index]:
            raise SourceError(
                f"{where}: y_test holds class {index} ({_quoted(name)}), which y_train lacks: "
                "the models and kNN never see it; add training images of it or drop it from "
                "the test split"
            )
        if not counts["train"][index]:
            raise SourceError(
                f"{where}: class {index} ({_quoted(name)}) has no images: number the classes "
                f"0 to {len(names) - 1} without gaps (renumber the labels), or drop its name"
            )
    for split in SPLITS:
        present = [names[k] for k in np.flatnonzero(np.asarray(counts[split]))]
        if len(present) < 2:
            raise SourceError(
                f"{where}: the {split} split holds one class ({_quoted(present[0])}): the "
                "metrics compare classes, so each split needs images of two classes at least"
            )


def load_npz(path: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    """The arrays of an .npz source (allow_pickle=False), checked; (N, H, W, 1) becomes (N, H, W)."""
    npz_classes(path, names)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in NPZ_ARRAYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise _unreadable(str(path), e) from None
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


def source_counts(source: str, names: list[str]) -> dict[str, tuple[int, ...]]:
    """split -> images of each class of an image folder or .npz source."""
    if source_kind(source) == NPZ:
        return npz_summary(source, names)[1]
    return folder_counts(source)


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
