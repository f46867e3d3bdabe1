"""`sciops verify` on every PDE defined by linear and nonlinear parts (plug-ins included),
and checks that the verification itself can fail."""

from dataclasses import dataclass

import pytest
import torch

from sciops import pdes
from sciops.cli import main
from sciops.pdes.base import param
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, smooth_random
from sciops.verify import verify

SEMILINEAR = [n for n in pdes.available() if isinstance(pdes.get(n), SemilinearPDE)]


@pytest.mark.parametrize("name", SEMILINEAR)
def test_every_definition_passes_verify(name):
    checks = verify(pdes.get(name))
    for c in checks:
        print(name, c.line())
    assert [c.name for c in checks if not c.passed] == []
    # the checks that carry numbers all ran (only the pointwise one may be not applicable)
    assert all(c.value is not None for c in checks if c.name != "pointwise residual")


def test_under_resolved_case_fails_verify(capsys):
    """Burgers with a steep front on 32 points: spatial convergence and residual fail."""
    code = main(["verify", "burgers1d", "--set", "resolution=32", "--set", "nu=0.002",
                 "--set", "t_final=0.2", "--set", "dt=0.005"])
    err = capsys.readouterr().err
    assert code == 2
    assert "spatial convergence" in err and "grid residual" in err


@dataclass(frozen=True)
class _CoupledParams(SemilinearParams):
    a: float = param(1.0, "coupling (1/time)")


class _Coupled(SemilinearPDE):
    """u_t = a v, v_t = -a u: a linear coupling, which is not a diagonal symbol."""

    name, ndim = "_coupled", 1
    fields = {"u": ("1", "u"), "v": ("1", "v")}
    Params = _CoupledParams

    def linear(self, u, d, p):
        return {"u": p.a * u["v"], "v": -p.a * u["u"]}

    def initial(self, p, n, generator):
        return {"u": smooth_random(p, n, generator), "v": smooth_random(p, n, generator)}


def test_coupled_linear_part_is_rejected_with_a_clear_message():
    pde = _Coupled()
    p = pde.make_params({"resolution": 16})
    with pytest.raises(ValueError, match="L must be diagonal"):
        pde.solve(p, pde.sample_inputs(p, 1, torch.Generator().manual_seed(0)))
