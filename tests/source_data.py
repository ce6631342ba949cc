"""Real data written as the new sources: scikit-learn's bundled 8x8 digits as an image folder,
and generated 32x32 colour shapes as an .npz (10 classes)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

DIGIT_CLASSES = [str(k) for k in range(10)]
SHAPE_CLASSES = [
    "red circle",
    "green circle",
    "blue square",
    "yellow square",
    "magenta triangle",
    "cyan triangle",
    "orange cross",
    "purple cross",
    "white ring",
    "lime ring",
]
_COLOURS = [
    (230, 40, 40),
    (40, 200, 60),
    (50, 70, 230),
    (235, 220, 40),
    (220, 50, 220),
    (40, 220, 230),
    (245, 140, 30),
    (140, 50, 200),
    (245, 245, 245),
    (160, 240, 60),
]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 bundled 8x8 digits as uint8 images (0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def write_image_folder(root: Path, images: np.ndarray, labels: np.ndarray, test_every: int = 5):
    """`images` as root/{train,test}/<class>/<n>.png, every `test_every`-th one in test/."""
    for index, (image, label) in enumerate(zip(images, labels)):
        split = "test" if index % test_every == 0 else "train"
        folder = root / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:05d}.png")
    return root


def write_digits_folder(root: Path) -> Path:
    return write_image_folder(root, *digits())


def _shape_mask(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(11, size - 11, 2)
    r = rng.uniform(6, 10)
    dy, dx = yy - cy, xx - cx
    if kind == 0:  # circle
        return dy**2 + dx**2 <= r**2
    if kind == 1:  # square
        return (abs(dy) <= r * 0.8) & (abs(dx) <= r * 0.8)
    if kind == 2:  # triangle
        return (dy <= r * 0.8) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.55)
    if kind == 3:  # cross
        return ((abs(dy) <= r / 3) & (abs(dx) <= r)) | ((abs(dx) <= r / 3) & (abs(dy) <= r))
    return (dy**2 + dx**2 <= r**2) & (dy**2 + dx**2 >= (r * 0.55) ** 2)  # ring


def shapes(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """`n` 32x32 RGB images of coloured shapes on a dark noisy ground, labels 0..9 cycling."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, size, size, 3), dtype=np.uint8)
    for image, label in zip(images, labels):
        image[_shape_mask(label // 2, size, rng)] = _COLOURS[label]
    return images, labels


def write_shapes_npz(path: Path, n_train: int = 1000, n_test: int = 200, **extra) -> Path:
    x_train, y_train = shapes(n_train, seed=0)
    x_test, y_test = shapes(n_test, seed=1)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    np.savez(path, **(arrays | {"classes": np.array(SHAPE_CLASSES)} | extra))
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as the bytes of an .npy file (what numpy.savez puts in each member)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_npz_members(path: Path, members: dict[str, bytes], compress: bool = True) -> str:
    """An .npz written member by member, so that a test can give one any bytes it likes."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return str(path)


def lying_header(shape: tuple[int, ...], dtype=np.int64) -> bytes:
    """An .npy header declaring `shape` and no data behind it."""
    buffer = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()
