"""Training losses against hand-computed values on analytic fields."""

import math

import pytest
import torch

from sciops.train.losses import get_loss, rel_h1_fd, rel_lp, rel_sobolev


def _periodic_grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(x, x, indexing="ij")


def test_rel_l2_is_a_mean_over_the_batch_not_a_sum():
    torch.manual_seed(0)
    target = torch.randn(6, 2, 16, 16, dtype=torch.float64)
    scale = torch.tensor([0.1, 0.2, 0.3, 0.1, 0.2, 0.3], dtype=torch.float64)
    pred = target * (1 + scale[:, None, None, None])
    assert float(rel_lp(pred, target)) == pytest.approx(0.2, rel=1e-12)
    assert float(rel_lp(pred[:2], target[:2])) == pytest.approx(0.15, rel=1e-12)


@pytest.mark.parametrize("s", [1, -1])
def test_periodic_sobolev_error_of_single_modes(s):
    # target sin(2 pi x), error 0.1 sin(6 pi y): ||.||²_{H^s} = ½ a² (1 + |k|²)^s
    x, y = _periodic_grid(32)
    target = torch.sin(2 * math.pi * x)[None, None]
    error = 0.1 * torch.sin(6 * math.pi * y)[None, None]
    expected = 0.1 * math.sqrt((1 + 36 * math.pi**2) ** s / (1 + 4 * math.pi**2) ** s)
    got = float(rel_sobolev(target + error, target, s))
    assert got == pytest.approx(expected, rel=1e-5)  # float32 FFTs


def test_finite_difference_h1_converges_to_the_analytic_value():
    # target sin(pi x) sin(pi y) on [0,1]²: ||t||² = 1/4, ||grad t||² = pi²/2;
    # error c x y: ||e||² = c²/9, ||grad e||² = 2c²/3
    c = 0.3
    expected = c * math.sqrt((1 / 9 + 2 / 3) / (0.25 + math.pi**2 / 2))
    gaps = []
    for n in (33, 65):
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        X, Y = torch.meshgrid(x, x, indexing="ij")
        target = (torch.sin(math.pi * X) * torch.sin(math.pi * Y))[None, None]
        pred = target + c * (X * Y)[None, None]
        gaps.append(abs(float(rel_h1_fd(pred, target)) - expected) / expected)
    assert gaps[1] < 2e-3
    assert math.log2(gaps[0] / gaps[1]) > 1.8  # second order


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="rel_h1_fd"):
        get_loss("l2")
