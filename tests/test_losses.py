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


def _sobolev_by_full_fft(pred, target, s):
    """The H^s relative error with the full (not halved) FFT: the definition, per sample."""
    shape = pred.shape[2:]
    k = [torch.fft.fftfreq(n, 1 / n, dtype=torch.float64) * 2 * math.pi for n in shape]
    k2 = sum(g**2 for g in torch.meshgrid(*k, indexing="ij"))
    w = (1 + k2) ** s
    dims = tuple(range(2, pred.ndim))
    e = (torch.fft.fftn(pred - target, dim=dims).abs() ** 2 * w).flatten(1).sum(1)
    t = (torch.fft.fftn(target, dim=dims).abs() ** 2 * w).flatten(1).sum(1)
    return torch.sqrt(e / t)


@pytest.mark.parametrize("shape", [(12, 9), (9, 12), (10, 8), (7,)])
@pytest.mark.parametrize("s", [1, -1])
def test_sobolev_counts_the_halved_axis_twice_on_odd_and_even_grids(shape, s):
    # random fields on non-square grids: the rfft weights must reproduce the full-FFT sum
    g = torch.Generator().manual_seed(1)
    target = torch.randn(3, 2, *shape, generator=g, dtype=torch.float64)
    pred = target + torch.rand(3, 1, *[1] * len(shape), generator=g, dtype=torch.float64) \
        * torch.randn(3, 2, *shape, generator=g, dtype=torch.float64)
    expected = _sobolev_by_full_fft(pred, target, s).mean()
    assert float(rel_sobolev(pred, target, s)) == pytest.approx(float(expected), rel=1e-5)


def test_get_loss_table():
    g = torch.Generator().manual_seed(2)
    t = torch.randn(2, 1, 8, 8, generator=g)
    p = t + 0.1 * torch.randn(2, 1, 8, 8, generator=g)
    assert torch.equal(get_loss("rel_h1")(p, t), rel_sobolev(p, t, 1))
    assert torch.equal(get_loss("rel_hm1")(p, t), rel_sobolev(p, t, -1))
    assert get_loss("rel_l2") is rel_lp and get_loss("rel_h1_fd") is rel_h1_fd
    assert float(get_loss("mse")(p, t)) == pytest.approx(float(((p - t) ** 2).mean()))
    with pytest.raises(ValueError) as e:
        get_loss("l2")
    assert str(e.value) == ("loss='l2' is not allowed; choose one of "
                            "['h1_neuralop', 'mse', 'rel_h1', 'rel_h1_fd', 'rel_hm1', 'rel_l2']")


def test_rel_lp_other_orders_and_zero_target():
    target = torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]])
    pred = target + torch.tensor([[[1.0, 1.0]], [[0.0, 2.0]]])
    # L1: (2/7 + 2/1) / 2; L2: (sqrt2/5 + 2/1) / 2
    assert float(rel_lp(pred, target, p=1)) == pytest.approx((2 / 7 + 2) / 2)
    assert float(rel_lp(pred, target)) == pytest.approx((math.sqrt(2) / 5 + 2) / 2)
    zero = torch.zeros_like(target)
    assert float(rel_lp(zero, zero)) == 0.0  # 0/0 is 0, not NaN


def test_h1_fd_uses_second_order_one_sided_ends_and_mean_over_batch():
    # target x (gradient 1), error a x²: with edge_order=2 both gradients are exact on the
    # grid, so the value is the trapezoid sum of (e² + e'²) over that of (t² + t'²)
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    w = torch.ones(11, dtype=torch.float64)
    w[[0, -1]] = 0.5
    a = torch.tensor([1.0, 3.0], dtype=torch.float64)[:, None, None]
    target = x.expand(2, 1, 11)
    pred = target + a * x**2
    num = (w * ((a * x**2) ** 2 + (2 * a * x) ** 2)).flatten(1).sum(1)
    den = (w * (x**2 + 1)).sum()
    expected = torch.sqrt(num / den).mean()
    assert float(rel_h1_fd(pred, target)) == pytest.approx(float(expected), rel=1e-12)
    # lengths stretch the box: on [0, 2] the same samples are x/2 and a x²/4
    num2 = (w * ((a * x**2) ** 2 + (a * x) ** 2)).flatten(1).sum(1)
    den2 = (w * (x**2 + 0.25)).sum()
    got = rel_h1_fd(pred, target, lengths=(2.0,))
    assert float(got) == pytest.approx(float(torch.sqrt(num2 / den2).mean()), rel=1e-12)


def test_losses_stay_on_the_input_device():
    # the meta device stands in for a GPU: any helper tensor left on the CPU fails
    p = torch.empty(2, 1, 8, 6, device="meta")
    assert rel_sobolev(p, p, 1).device.type == "meta"
    assert rel_h1_fd(p, p).device.type == "meta"


def test_h1_fd_keeps_a_low_precision_dtype():
    g = torch.Generator().manual_seed(3)
    p, t = (torch.randn(2, 1, 8, 6, generator=g).bfloat16() for _ in range(2))
    assert rel_h1_fd(p, t).dtype == torch.bfloat16


@pytest.mark.parametrize("shape", [(3, 2, 16, 12), (4, 1, 20)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_h1_neuralop_equals_neuraloperators_h1loss(shape, reduction):
    from neuralop.losses import H1Loss

    g = torch.Generator().manual_seed(4)
    target = torch.randn(*shape, generator=g, dtype=torch.float64)
    pred = target + 0.3 * torch.randn(*shape, generator=g, dtype=torch.float64)
    theirs = H1Loss(d=len(shape) - 2, reduction=reduction)(pred, target)
    ours = get_loss("h1_neuralop", reduction)(pred, target)
    assert abs(float(ours) - float(theirs)) < 1e-6 * float(theirs)
    # one relative error per sample and channel: the pooled rel_h1 differs on these fields
    assert abs(float(get_loss("rel_h1", reduction)(pred, target)) - float(theirs)) > 1e-3


@pytest.mark.parametrize("name", ["rel_l2", "rel_h1", "rel_hm1", "rel_h1_fd", "mse"])
def test_sum_reduction_is_the_batch_size_times_the_mean(name):
    g = torch.Generator().manual_seed(5)
    target = torch.randn(5, 2, 8, 8, generator=g, dtype=torch.float64)
    pred = target + torch.rand(5, 1, 1, 1, generator=g, dtype=torch.float64) * target.flip(0)
    mean, total = get_loss(name)(pred, target), get_loss(name, "sum")(pred, target)
    assert float(total) == pytest.approx(5 * float(mean), rel=1e-6)
    with pytest.raises(ValueError, match="reduction='avg' is not allowed"):
        get_loss(name, "avg")(pred, target)
