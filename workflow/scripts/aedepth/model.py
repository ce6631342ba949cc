"""The MLP autoencoder: sigmoid hidden layers, tanh latent code, sigmoid output."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aedepth.grid import MNIST_PIXELS, input_size
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


def build_model(hparams: dict) -> Autoencoder:
    """The model described by a hyperparameter snapshot (as saved with every checkpoint); its
    input size is that of the images it was trained on (aedepth.grid.input_size)."""
    return Autoencoder(hparams["widths"], hparams["latent_dim"], input_size(hparams))


def load_model(weights_path: str, hparams: dict) -> Autoencoder:
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


def encode_images(model: Autoencoder, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Latent codes (N, latent_dim) float32 of uint8 images (N, H, W[, 3]), on the CPU."""
    return _apply(model.encode, images, chunk)


def reconstruct_images(model: Autoencoder, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Reconstructions (N, H * W[ * 3]) float32 in [0, 1] of uint8 images (N, H, W[, 3]),
    flattened, on the CPU."""
    return _apply(model.reconstruct, images, chunk)
