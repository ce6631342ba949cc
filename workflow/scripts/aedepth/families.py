"""Model families (the `architecture` axis): what each one's depth means, its widths, its
parameter count and its training FLOPs, one registry entry each.

Plain arithmetic, no torch: Snakemake reads it when it parses the workflow (grid priorities,
the matched arm's widths). The models themselves are aedepth.model's classes (its MODELS, by
family name); tests/test_model.py checks every count here against the built model's parameters.

- mlp: the article's autoencoder; depth = hidden Linear layers, widths = their units.
- conv: depth = stride-2 3x3 convolution blocks before a dense latent, widths = their
  channels; the decoder mirrors them with transposed convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

Shape = tuple[int, int, int]  # an image's (height, width, channels)

MLP = "mlp"
CONV = "conv"
KERNEL = 3  # the conv family's kernel: 3x3, stride 2, padding 1 (each block halves H and W)


def mlp_parameters(widths: list[int], latent_dim: int, shape: Shape) -> int:
    """Weights and biases of the MLP's Linear layers: input -> widths -> latent, mirrored."""
    sizes = [math.prod(shape), *widths, latent_dim]
    layers = list(zip(sizes, sizes[1:]))
    layers += [(n_out, n_in) for n_in, n_out in reversed(layers)]
    return sum(n_in * n_out + n_out for n_in, n_out in layers)


def mlp_multiply_adds(widths: list[int], latent_dim: int, shape: Shape) -> int:
    """The MLP's multiply-adds per image, counted as its parameters (biases included), as
    the study's FLOP accounting always has: 6 x parameters per image per epoch."""
    return mlp_parameters(widths, latent_dim, shape)


def conv_sizes(height: int, width: int, blocks: int) -> list[tuple[int, int]]:
    """(height, width) of the input and after each stride-2 block: ceil of each half."""
    sizes = [(height, width)]
    for _ in range(blocks):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def _conv_layers(widths: list[int], shape: Shape) -> tuple[list[tuple[int, int, int]], int]:
    """(in channels, out channels, output pixels) of each encoder convolution, and the number
    of features the dense latent layer reads."""
    height, width, channels = shape
    sizes = conv_sizes(height, width, len(widths))
    ins = [channels, *widths]
    layers = [(ins[i], widths[i], sizes[i + 1][0] * sizes[i + 1][1]) for i in range(len(widths))]
    features = widths[-1] * sizes[-1][0] * sizes[-1][1]
    return layers, features


def conv_parameters(widths: list[int], latent_dim: int, shape: Shape) -> int:
    """Weights and biases of the conv family: each convolution, the dense layers into and
    out of the latent code, and each transposed convolution (the mirror of a convolution has
    its weights and the bias of its output channels, the convolution's input channels)."""
    layers, features = _conv_layers(widths, shape)
    kernel = KERNEL * KERNEL
    encoder = sum(c_in * c_out * kernel + c_out for c_in, c_out, _ in layers)
    decoder = sum(c_out * c_in * kernel + c_in for c_in, c_out, _ in layers)
    dense = (features * latent_dim + latent_dim) + (latent_dim * features + features)
    return encoder + dense + decoder


def conv_multiply_adds(widths: list[int], latent_dim: int, shape: Shape) -> int:
    """The conv family's multiply-adds per image: each convolution's weights once per output
    pixel, each transposed one's once per input pixel (the same count), the dense layers'
    weights once."""
    layers, features = _conv_layers(widths, shape)
    kernel = KERNEL * KERNEL
    convolutions = sum(c_in * c_out * kernel * pixels for c_in, c_out, pixels in layers)
    return 2 * convolutions + 2 * features * latent_dim


@dataclass(frozen=True)
class Family:
    name: str  # its value on the `architecture` axis
    widths_key: str  # the config key listing its widths; depth d uses the first d
    parameters: Callable[[list[int], int, Shape], int]  # (widths, latent_dim, shape) -> count
    multiply_adds: Callable[[list[int], int, Shape], int]  # the same -> per image, forward

    def training_flop(self, widths: list[int], latent_dim: int, shape: Shape, images: int) -> float:
        """FLOPs of training on `images` images (one per image per epoch): forward 2 and
        backward 4 per multiply-add, the usual count."""
        return 6.0 * self.multiply_adds(widths, latent_dim, shape) * images


FAMILIES = {
    MLP: Family(MLP, "hidden_sizes", mlp_parameters, mlp_multiply_adds),
    CONV: Family(CONV, "conv_channels", conv_parameters, conv_multiply_adds),
}
DEFAULT = MLP  # the family of a model whose hyperparameters name none (every study before it)


def family_of(hparams: dict) -> Family:
    """The family of the model these hyperparameters (or a run's axis values) describe."""
    return FAMILIES[hparams.get("architecture", DEFAULT)]
