"""The speed levers of torch training: the uniform dropout mask, epoch_samples, CPU threads, CPU precision,
and Lightning loaded only by a network's fit."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.nn.dropout import UniformDropout
from adaptcast.forecast.training import cpu_flags, cpu_precision

torch.set_num_threads(1)


def test_uniform_dropout_keeps_one_minus_p_and_rescales_survivors():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    out = UniformDropout(0.2).train()(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.005
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.8))


def test_uniform_dropout_gradient_is_the_mask():
    torch.manual_seed(1)
    x = torch.randn(1000, requires_grad=True)
    out = UniformDropout(0.5).train()(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out.detach() != 0).float() * 2.0)


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_uniform_dropout_is_identity_in_eval_or_at_zero(p):
    x = torch.randn(64)
    drop = UniformDropout(p)
    assert drop.eval()(x) is x
    if p == 0.0:
        assert drop.train()(x) is x


def test_uniform_dropout_keeps_dtype():
    x = torch.ones(4096, dtype=torch.bfloat16)
    assert UniformDropout(0.1).train()(x).dtype == torch.bfloat16


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_uniform_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\)"):
        UniformDropout(p)


# The CPU is outside the system under test: these flag sets are fakes standing in for processors.
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"fma", "avx2"}, "32-true"),  # an AVX2 EPYC: bf16 would be emulated
        ({"avx2", "avx512f", "avx512bw"}, "32-true"),  # AVX-512 without its bf16 extension
        ({"avx512f", "avx512_bf16"}, "bf16-mixed"),
        ({"avx2", "amx_bf16", "amx_tile"}, "bf16-mixed"),
        (set(), "32-true"),
    ],
)
def test_cpu_precision_follows_native_bf16(flags, expected):
    assert cpu_precision(frozenset(flags)) == expected


def test_cpu_flags_reads_the_flags_line(tmp_path):
    fake = tmp_path / "cpuinfo"  # a fake /proc/cpuinfo
    fake.write_text(
        "processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: fpu avx2 avx512_bf16\n\nflags\t: fpu\n"
    )
    assert cpu_flags(str(fake)) == frozenset({"fpu", "avx2", "avx512_bf16"})
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def _windows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = np.sin(np.arange(n + 20) / 3.0) + 0.1 * rng.standard_normal(n + 20)
    X = np.stack([s[i : i + 16] for i in range(n)])[..., None].astype(np.float32)
    Y = np.stack([s[i + 16 : i + 20] for i in range(n)])[..., None].astype(np.float32)
    return X, Y


def test_epoch_samples_caps_the_windows_each_epoch_visits():
    X, Y = _windows(300)
    kw = dict(lookback=16, horizon=4, epochs=3, patience=3, num_threads=1, accelerator="cpu")
    capped = create_forecaster("arnet", epoch_samples=100, **kw).fit(X, Y)
    whole = create_forecaster("arnet", epoch_samples=1000, **kw).fit(X, Y)
    assert capped.epochs == whole.epochs == 3
    assert capped.samples_seen == 3 * 100
    assert whole.samples_seen == 3 * 300  # a cap above the data is all of it


def test_epoch_samples_must_be_positive():
    with pytest.raises(ValueError, match="epoch_samples must be >= 1"):
        create_forecaster("lstm", lookback=16, horizon=4, epoch_samples=0)


def test_small_nets_train_and_predict_on_one_thread():
    model = create_forecaster("lstm", lookback=16, horizon=4, accelerator="cpu")
    assert model.cpu_threads(model.build_module()) == 1
    assert (
        create_forecaster("lstm", lookback=16, horizon=4, num_threads=2).cpu_threads(model.build_module())
        == 2
    )


def test_lightning_loads_only_when_a_network_is_fitted():
    """Importing the CLI, a closed-form fit and serving leave Lightning (seconds to import) unloaded."""
    script = """
import sys
import numpy as np
import adaptcast.streams.cli
from adaptcast.forecast import create_forecaster
X = np.random.default_rng(0).normal(size=(64, 8, 1)).astype(np.float32)
m = create_forecaster("arnet", lookback=8, horizon=2)
m.fit_closed_form(X[:, :8], X[:, -2:])
m.predict_embed(X)
assert "pytorch_lightning" not in sys.modules, "serving loaded Lightning"
m.clone().fit(X, X[:, -2:])
assert "pytorch_lightning" in sys.modules
"""
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "CI": "1"})
