"""Unit tests of MIMO-VP: output shapes for grid and vector frames, one-shot output, deep supervision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptcast.forecast import create_forecaster, load_forecaster
from adaptcast.forecast.models.mimo_vp import MIMOVPNet

torch.set_num_threads(1)
SMALL = dict(d_model=16, n_heads=2, d_ff=16, e_layers=1, d_layers=2)


def test_grid_frames_output_shape():
    net = MIMOVPNet(6, 4, (2, 8, 8), 128, patch=2, **SMALL).eval()
    x = torch.randn(3, 6, 2 * 8 * 8)
    assert net(x).shape == (3, 4, 128)
    assert net.embed(x).shape == (3, 16)


def test_vector_frames_output_shape_and_targets_first():
    net = MIMOVPNet(12, 5, (7, 1, 1), 3, **SMALL).eval()
    assert net(torch.randn(2, 12, 7)).shape == (2, 5, 3)


def test_patches_round_trip_preserves_layout():
    net = MIMOVPNet(3, 2, (2, 4, 6), 48, patch=2, **SMALL)
    x = torch.arange(2 * 3 * 48, dtype=torch.float32).view(2, 3, 48)
    assert torch.equal(net._from_patches(net._to_patches(x), 3), x)


def test_all_frames_in_one_pass_and_every_decoder_block_supervised():
    net = MIMOVPNet(6, 4, (1, 4, 4), 16, **SMALL).eval()
    calls = []
    net.decoder[0].register_forward_hook(lambda m, i, o: calls.append(o.shape))
    outs = net.forward_all(torch.randn(2, 6, 16))
    assert len(calls) == 1 and calls[0] == (2, 4 * 16, 16)  # one call covers all 4 future frames × 16 cells
    assert len(outs) == 2 and all(o.shape == (2, 4, 16) for o in outs)


def test_local_block_mixes_neighbouring_cells_only():
    """The first future frame at cell (0, 0) does not depend on far cells through the local block alone."""
    net = MIMOVPNet(2, 1, (1, 8, 8), 64, **SMALL).eval()
    block = net.encoder[0].local
    x = torch.zeros(1, 2 * 64, 16)
    x[0, 63] = 1.0  # last cell (7, 7) of frame 0
    y = block(x, 2).detach()
    near = block(torch.zeros_like(x), 2).detach()
    changed = (~torch.isclose(y, near)).any(-1).view(2, 8, 8)
    assert changed[:, 7, 7].all() and not changed[:, 0, 0].any()


def test_forecaster_grid_fit_predict_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6, 2 * 4 * 4)).astype(np.float32)
    Y = X[:, -3:, :32] * 0.5
    model = create_forecaster(
        "mimo_vp",
        lookback=6,
        horizon=3,
        n_features=32,
        n_targets=32,
        grid=(2, 4, 4),
        epochs=2,
        accelerator="cpu",
        **SMALL,
    )
    model.fit(X, Y)
    pred = model.predict(X[:5])
    assert pred.shape == (5, 3, 32)
    np.testing.assert_array_equal(load_forecaster(model.save(tmp_path / "m")).predict(X[:5]), pred)


def test_forecaster_rejects_grid_that_does_not_match_features():
    with pytest.raises(ValueError, match="grid"):
        create_forecaster("mimo_vp", lookback=6, horizon=3, n_features=30, n_targets=1, grid=(2, 4, 4))
    with pytest.raises(ValueError, match="patch"):
        create_forecaster(
            "mimo_vp", lookback=6, horizon=3, n_features=32, n_targets=1, grid=(2, 4, 4), patch=3
        )


def test_deep_supervision_loss_uses_every_block():
    model = create_forecaster("mimo_vp", lookback=6, horizon=3, n_features=4, n_targets=2, **SMALL)
    net = model.build_module().eval()
    x, y = torch.randn(5, 6, 4), torch.randn(5, 3, 2)
    outs = net.forward_all(x)
    expected = (
        sum(10 * torch.nn.functional.mse_loss(o, y) + torch.nn.functional.l1_loss(o, y) for o in outs) / 2
    )
    torch.testing.assert_close(model.loss(net, x, y), expected)
