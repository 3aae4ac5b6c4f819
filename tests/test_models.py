"""Tests of astro_enhance.models: shapes, size multiple, identity at init, critic, registry."""

import pytest

torch = pytest.importorskip("torch")

from astro_enhance.exceptions import WeightsError  # noqa: E402
from astro_enhance.models import PatchCritic, UNet, build_model  # noqa: E402


def test_unet_shape_and_identity_at_init():
    torch.manual_seed(0)
    net = build_model("unet", {"width": 8, "depth": 3})
    assert net.size_multiple == 8
    x = torch.randn(2, 1, 48, 64)
    y = net(x)
    assert y.shape == x.shape
    # zero-initialised head: a fresh network is exactly the identity (residual output)
    assert torch.equal(y, x)


def test_unet_residual_learns_correction():
    torch.manual_seed(0)
    net = UNet(width=8, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(4, 1, 32, 32)
    for _ in range(30):
        loss = (net(x) - 2 * x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(net(x), x)
    assert loss.item() < x.abs().mean().item() * 0.9


def test_unet_rejects_wrong_size():
    net = UNet(width=4, depth=3)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 30, 32))


def test_unet_fully_convolutional_any_multiple():
    net = UNet(width=4, depth=2)
    for shape in [(8, 8), (16, 40), (64, 12)]:
        assert net(torch.zeros(1, 1, *shape)).shape[-2:] == shape


def test_unet_multichannel_out():
    net = UNet(in_channels=1, out_channels=3, width=4, depth=1)
    x = torch.randn(1, 1, 8, 8)
    y = net(x)
    assert y.shape == (1, 3, 8, 8)
    assert torch.equal(y[:, :1], x)


def test_shipped_size_under_10mb():
    import json
    from astro_enhance.training.recipes import RECIPE_DIR
    for name in ("unet", "gan"):
        cfg = json.loads((RECIPE_DIR / f"{name}.json").read_text())["model"]
        net = build_model(cfg["architecture"], cfg["config"])
        n = sum(p.numel() for p in net.parameters())
        assert 3e5 <= n <= 2.5e6   # 4 bytes per float32 parameter: <= 10 MB


def test_critic_output_shape():
    c = PatchCritic(width=8, n_layers=3)
    out = c(torch.zeros(2, 1, 64, 96), torch.zeros(2, 1, 64, 96))
    assert out.shape == (2, 1, 8, 12)
    c2 = build_model("patch_critic", {"width": 8, "n_layers": 2, "spectral_norm": False})
    assert c2(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)).shape == (1, 1, 8, 8)


def test_critic_sees_condition():
    torch.manual_seed(0)
    c = PatchCritic(width=8, n_layers=2, spectral_norm=False)
    cand = torch.randn(1, 1, 32, 32)
    a = c(torch.zeros(1, 1, 32, 32), cand)
    b = c(torch.ones(1, 1, 32, 32), cand)
    assert not torch.allclose(a, b)


def test_build_model_errors():
    with pytest.raises(WeightsError, match="unknown architecture"):
        build_model("nope", {})
    with pytest.raises(WeightsError, match="does not fit"):
        build_model("unet", {"bogus": 1})
