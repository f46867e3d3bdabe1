"""FNO / TFNO / MG-TFNO: equality with neuraloperator, multi-grid patching, registry errors."""

import io

import pytest
import torch
from neuralop.models import FNO as NeuralopFNO
from neuralop.models import TFNO as NeuralopTFNO

from sciops import models
from sciops.models.fno import FNO, TFNO
from sciops.models.mg_tfno import MGTFNO, split, stitch


def _rel(a, b):
    return ((a - b).norm() / a.norm()).item()


@pytest.mark.parametrize("cls, kwargs, shape", [
    (NeuralopFNO, dict(n_modes=(8, 8), hidden_channels=12, n_layers=3), (12, 9)),
    (NeuralopTFNO, dict(n_modes=(8,), hidden_channels=12), (20,)),
    (NeuralopFNO, dict(n_modes=(4, 4, 4), hidden_channels=8, domain_padding=0.25,
                       fno_skip="soft-gating", channel_mlp_skip="linear"), (8, 6, 7)),
    (NeuralopFNO, dict(n_modes=(6, 6), hidden_channels=8, use_channel_mlp=False,
                       factorization="cp", rank=0.3), (10, 10)),
    (NeuralopFNO, dict(n_modes=(6, 6), hidden_channels=8, fno_skip="identity",
                       channel_mlp_skip=None, factorization="tt", rank=0.3,
                       positional_embedding=None, lifting_channel_ratio=0), (10, 8)),
])
def test_from_neuralop_is_the_same_function(cls, kwargs, shape):
    torch.manual_seed(0)
    ref = cls(in_channels=2, out_channels=3, **kwargs)
    ours = FNO.from_neuralop(ref)
    x = torch.randn(3, 2, *shape)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = ref(xa), ours(xb)
    g = torch.randn_like(a)
    a.backward(g)
    b.backward(g)
    assert _rel(a, b) < 1e-5
    assert _rel(xa.grad, xb.grad) < 1e-5
    named = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        assert _rel(p.grad, named[name].grad) < 1e-5, name


def test_build_defaults_match_neuralop_and_checkpoint_is_plain_tensors():
    torch.manual_seed(1)
    ours = models.build("tfno", n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=16)
    ref = NeuralopTFNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=16)
    shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items() if k != "_metadata"}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == shapes
    dense = FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=16)
    spectral_params = lambda m: sum(p.numel() for n, p in m.named_parameters() if ".convs." in n)  # noqa: E731
    assert 0.05 < spectral_params(ours) / spectral_params(dense) < 0.15  # rank 0.1
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    ours.load_state_dict(torch.load(buffer, weights_only=True))


def test_registry_errors_are_clear():
    assert {"fno", "tfno", "mg-tfno"} <= set(models.available())
    with pytest.raises(ValueError, match=r"unknown name 'fnoo'.*fno, .*tfno"):
        models.build("fnoo")
    with pytest.raises(ValueError,
                       match=r"unknown keyword\(s\) 'modes'; accepted keywords: n_modes"):
        models.build("tfno", modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=8)
    with pytest.raises(ValueError, match="missing a required argument: 'hidden_channels'"):
        models.build("fno", n_modes=(8, 8), in_channels=1, out_channels=1)
    with pytest.raises(ValueError, match="fno_skip"):
        models.build("fno", n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=8,
                     fno_skip="conv")
    with pytest.raises(ValueError, match="n_modes"):
        models.build("fno", n_modes=(8, 0), in_channels=1, out_channels=1, hidden_channels=8)
    with pytest.raises(ValueError, match="from_neuralop: .*norm"):
        FNO.from_neuralop(NeuralopFNO(n_modes=(4, 4), in_channels=1, out_channels=1,
                                      hidden_channels=4, norm="group_norm"))


def _context_reference(x, patch, level, size, pad):
    """Window of ``patch`` at ``level``: the periodic field shifted, tiled and subsampled."""
    step = 2**level
    out = x
    for axis, (p, s, q) in enumerate(zip(patch, size, pad)):
        dim = 2 + axis
        start = p * s - ((step - 1) * s) // 2 - step * q
        tiled = torch.cat([torch.roll(out, -start, dims=dim)] * 3, dim=dim)
        window = tiled.narrow(dim, 0, step * (s + 2 * q))
        out = window[(slice(None),) * dim + (slice(None, None, step),)]
    return out


@pytest.mark.parametrize("shape, levels, pad", [
    ((16, 12), 1, (0, 0)), ((16, 12), 2, (1, 2)), ((24, 8), 2, (2, 0)), ((8, 8, 4), 2, (1, 1, 0)),
])
def test_split_stitch_identity_and_context_is_a_subsampling(shape, levels, pad):
    torch.manual_seed(2)
    x = torch.randn(2, 3, *shape)
    patches = split(x, levels, pad)
    n, d = 2**levels, len(shape)
    size = [s // n for s in shape]
    assert patches.shape == (2 * n**d, 3 * (levels + 1), *(s + 2 * q for s, q in zip(size, pad)))
    assert torch.equal(stitch(patches[:, :3], levels, pad), x)
    grid = torch.cartesian_prod(*[torch.arange(n)] * d).reshape(-1, d).tolist()
    for b_index, patch in enumerate(grid):
        for level in range(levels + 1):
            ref = _context_reference(x, patch, level, size, pad)
            got = patches[b_index::n**d, 3 * level: 3 * level + 3]  # sample-major batch
            assert torch.equal(got, ref), (patch, level)


def test_split_rejects_indivisible_resolution():
    with pytest.raises(ValueError,
                       match=r"resolution \(20, 12\) is not divisible by the patch count 8"):
        split(torch.randn(1, 1, 20, 12), 3)


def test_mg_tfno_without_levels_is_the_tfno_and_stitches_patches():
    torch.manual_seed(3)
    kw = dict(n_modes=(4, 4), in_channels=2, out_channels=1, hidden_channels=8, n_layers=2)
    x = torch.randn(2, 2, 16, 16)
    mg0 = MGTFNO(levels=0, **kw)
    tfno = TFNO(**kw)
    tfno.load_state_dict(mg0.tfno.state_dict())
    assert torch.equal(mg0(x), tfno(x))
    mg = models.build("mg-tfno", levels=2, padding_fraction=0.125, **kw)
    assert mg.tfno.in_channels == 6
    patches = mg.tfno(split(x, 2, [2, 2]))
    assert torch.equal(mg(x), stitch(patches, 2, 2))
    assert torch.equal(mg(x)[:, :, 4:8, 8:12], patches[6::16, :, 2:-2, 2:-2])
