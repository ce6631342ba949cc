"""The autoencoder's shapes, ranges and safe loading."""

import numpy as np
import pytest
import torch

from aedepth.jobs import UserFacingError
from aedepth.latents import latent_table, read_latents, write_latents
from aedepth.model import Autoencoder, encode_images, load_model, reconstruct_images


@pytest.mark.parametrize(
    ("widths", "params"),
    [([500], 787_786), ([500, 300], 1_087_586), ([500, 300, 100], 1_146_986)],
)
def test_layer_shapes_and_parameter_count(widths, params):
    model = Autoencoder(widths, latent_dim=2)
    assert sum(p.numel() for p in model.parameters()) == params
    encoder = [m.weight.shape for m in model.encoder if isinstance(m, torch.nn.Linear)]
    decoder = [m.weight.shape for m in model.decoder if isinstance(m, torch.nn.Linear)]
    sizes = [784, *widths, 2]
    assert encoder == [torch.Size([o, i]) for i, o in zip(sizes, sizes[1:])]
    assert decoder == [torch.Size([i, o]) for i, o in reversed(list(zip(sizes, sizes[1:])))]


def test_latent_in_tanh_range_and_reconstruction_in_unit_interval():
    torch.manual_seed(0)
    model = Autoencoder([64, 32], latent_dim=3).eval()
    images = np.random.default_rng(0).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    z = encode_images(model, images, chunk=4)
    x_hat = reconstruct_images(model, images, chunk=4)
    assert z.shape == (10, 3) and z.dtype == np.float32 and np.abs(z).max() <= 1
    assert x_hat.shape == (10, 784) and x_hat.min() >= 0 and x_hat.max() <= 1


def test_load_model_round_trip_and_refuses_pickled_code(tmp_path):
    hparams = {"widths": [16], "latent_dim": 2}
    model = Autoencoder([16], 2)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    loaded = load_model(str(tmp_path / "model.pt"), hparams)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)

    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save({"evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserFacingError) as refused:
        load_model(str(tmp_path / "evil.pt"), hparams)
    assert str(refused.value) == (
        f"{tmp_path / 'evil.pt'}: not the weights of this model (UnpicklingError); "
        "delete it and run again to retrain it"
    )


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_a_damaged_weights_file_is_one_line_naming_it(tmp_path, content):
    (tmp_path / "model.pt").write_bytes(content)
    with pytest.raises(UserFacingError) as refused:
        load_model(str(tmp_path / "model.pt"), {"widths": [16], "latent_dim": 2})
    assert str(refused.value).startswith(f"{tmp_path / 'model.pt'}: not the weights of this model")
    assert "weights_only" not in str(refused.value)


def test_latent_parquet_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    splits = {
        "train": (rng.normal(size=(6, 2)), np.arange(6) % 10),
        "test": (rng.normal(size=(3, 2)), np.array([9, 8, 7])),
    }
    metadata = {"depth": 2, "seed": 1, "widths": [5, 4], "latent_dim": 2, "source": "sample"}
    write_latents(tmp_path / "z.parquet", latent_table(splits, metadata))
    loaded, loaded_metadata = read_latents(tmp_path / "z.parquet")
    assert loaded_metadata == metadata
    for split, (z, labels) in splits.items():
        np.testing.assert_array_equal(loaded[split][0], z.astype(np.float32))
        np.testing.assert_array_equal(loaded[split][1], labels)
    assert [p.name for p in tmp_path.iterdir()] == ["z.parquet"]  # no temporary file left
