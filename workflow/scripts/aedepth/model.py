"""The autoencoders of aedepth.families: the article's MLP (sigmoid hidden layers, tanh latent
code, sigmoid output) and a small convolutional one. Both take and return images as flat rows
(height x width x channels, channels last), so training, evaluation and figures treat them
alike."""

from __future__ import annotations

import math
import numpy as np
import torch
from torch import nn

from aedepth.families import CONV, MLP, conv_sizes, family_of
from aedepth.grid import MNIST_PIXELS, model_shape
from aedepth.jobs import UserFacingError


class Autoencoder(nn.Module):
    """Encoder input -> widths... -> latent (tanh); the decoder mirrors the widths.

    `forward` returns output *logits*; `reconstruct` applies the output sigmoid. Training
    minimises the per-pixel binary cross-entropy of sigmoid(logits) against the input, computed
    from the logits (sigmoid + BCE in one, numerically stable): the plain loop of train.py
    calls F.binary_cross_entropy_with_logits; the speed path (aedepth.speed) computes the
    same loss and its gradient in its written-out backward, and evaluation uses its
    speed.bce_sum.
    """

    def __init__(self, widths: list[int], latent_dim: int, input_dim: int = MNIST_PIXELS):
        super().__init__()
        self.widths = list(widths)
        self.latent_dim = latent_dim
        encoder: list[nn.Module] = []
        for n_in, n_out in zip([input_dim, *widths], widths):
            encoder += [nn.Linear(n_in, n_out), nn.Sigmoid()]
        encoder += [nn.Linear(widths[-1], latent_dim), nn.Tanh()]
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = []
        mirrored = list(reversed(widths))
        for n_in, n_out in zip([latent_dim, *mirrored], mirrored):
            decoder += [nn.Linear(n_in, n_out), nn.Sigmoid()]
        decoder += [nn.Linear(mirrored[-1], input_dim)]  # logits; sigmoid in reconstruct()
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructed pixel intensities in [0, 1]."""
        return torch.sigmoid(self(x))


class ConvAutoencoder(nn.Module):
    """Encoder: `widths` stride-2 3x3 convolution blocks (ReLU), then a dense linear latent
    code, as the convolutional autoencoder of Sainburg et al. (2021); the decoder mirrors it:
    dense (ReLU), transposed convolutions back to the image's size and channels (output
    logits, as the MLP's). Rows in and out are channels-last flat images.

    Not tanh, as the MLP's code: behind ReLU features the code saturated early in training
    and stayed constant (Fashion-MNIST, depth 2: all 3 seeds; tests/test_families.py)."""

    def __init__(self, widths: list[int], latent_dim: int, shape: tuple[int, int, int]):
        super().__init__()
        self.widths = list(widths)
        self.latent_dim = latent_dim
        self.shape = tuple(shape)
        height, width, channels = shape
        sizes = conv_sizes(height, width, len(widths))
        self.code_shape = (widths[-1], *sizes[-1])  # (channels, height, width) before the latent
        features = math.prod(self.code_shape)
        encoder: list[nn.Module] = []
        for c_in, c_out in zip([channels, *widths], widths):
            encoder += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        encoder += [nn.Flatten(), nn.Linear(features, latent_dim)]
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [nn.Linear(latent_dim, features), nn.ReLU()]
        decoder.append(nn.Unflatten(1, self.code_shape))
        outs = [channels, *widths[:-1]]
        for i in reversed(range(len(widths))):
            # output_padding 1 where halving rounded up, so each block restores its input size
            (h_out, w_out), (h_in, w_in) = sizes[i], sizes[i + 1]
            padding = (h_out - 2 * h_in + 1, w_out - 2 * w_in + 1)
            decoder.append(
                nn.ConvTranspose2d(
                    widths[i], outs[i], 3, stride=2, padding=1, output_padding=padding
                )
            )
            if i > 0:
                decoder.append(nn.ReLU())
        self.decoder = nn.Sequential(*decoder)

    def _image(self, rows: torch.Tensor) -> torch.Tensor:
        height, width, channels = self.shape
        return rows.reshape(len(rows), height, width, channels).permute(0, 3, 1, 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._image(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(self.encoder(self._image(x)))
        return logits.permute(0, 2, 3, 1).reshape(len(x), -1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructed pixel intensities in [0, 1]."""
        return torch.sigmoid(self(x))


# Each family of aedepth.families: its class, built from (widths, latent size, image shape).
MODELS = {
    MLP: lambda widths, latent_dim, shape: Autoencoder(widths, latent_dim, math.prod(shape)),
    CONV: ConvAutoencoder,
}


def build_model(hparams: dict) -> nn.Module:
    """The model described by a hyperparameter snapshot (as saved with every checkpoint): its
    family (aedepth.families), widths, latent size and the shape of the images it was trained
    on (aedepth.grid.model_shape)."""
    model = MODELS[family_of(hparams).name]
    return model(hparams["widths"], hparams["latent_dim"], model_shape(hparams))


def load_model(weights_path: str, hparams: dict) -> nn.Module:
    """Rebuild a trained model; weights_only=True so no pickled code is ever executed.

    A file that is not this model's plain state dict (damaged, foreign, holding pickled
    objects) is refused in one line naming it; not with torch's advice to load it with
    weights_only=False, which is the wrong advice for a file nobody should trust.
    """
    model = build_model(hparams)
    try:
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except Exception as error:
        raise UserFacingError(
            f"{weights_path}: not the weights of this model ({type(error).__name__}); "
            "delete it and run again to retrain it"
        ) from None
    return model.eval()


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 intensities in [0, 1]."""
    return pixels.float().div_(255.0)


@torch.no_grad()
def _apply(function, images: np.ndarray, chunk: int) -> np.ndarray:
    """function(chunk of intensities) for every chunk of rows, written into one array: no
    list of chunks and no concatenated copy (memory: the result plus one chunk)."""
    flat = torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), -1))
    out = None
    for i in range(0, len(flat), chunk):
        result = function(to_unit(flat[i : i + chunk]))
        if out is None:
            out = np.empty((len(flat), *result.shape[1:]), dtype=np.float32)
        out[i : i + len(result)] = result.numpy()
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def encode_images(model: nn.Module, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Latent codes (N, latent_dim) float32 of uint8 images (N, H, W[, 3]), on the CPU."""
    return _apply(model.encode, images, chunk)


def reconstruct_images(model: nn.Module, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Reconstructions (N, H * W[ * 3]) float32 in [0, 1] of uint8 images (N, H, W[, 3]),
    flattened, on the CPU."""
    return _apply(model.reconstruct, images, chunk)
