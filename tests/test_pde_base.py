"""The PDE protocol (sciops/pdes/base.py): parameter validation and coercion, conditions,
registry, and the messages of the protocol's defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from sciops import pdes, plugins
from sciops.pdes import base
from sciops.pdes.base import PDE, Params, SolverDiverged, dirichlet, param


@dataclass(frozen=True)
class P(Params):
    nu: float = param(0.5, "viscosity", range=(0.0, 1.0))
    k: int = param(2, "modes", range=(1, None), open_low=True)
    free: float = param(1.5, "unbounded")
    auto: int | None = param(None, "chosen automatically when None", range=(0, None))
    scheme: str = param("a", "scheme", choices=("a", "b"))
    flag: bool = param(False, "a switch")
    box: tuple[float, ...] = param((1.0, 2.0), "box sides")


def test_defaults_are_valid_and_kept():
    p = P()
    assert p.to_dict() == {"nu": 0.5, "k": 2, "free": 1.5, "auto": None, "scheme": "a",
                           "flag": False, "box": (1.0, 2.0)}
    assert P.field_docs()["nu"] == "viscosity"
    assert p.replace(nu=0.25).nu == 0.25


@pytest.mark.parametrize("value", [0.0, 1.0, 0.3, 1])
def test_closed_range_accepts_its_ends_and_ints_for_floats(value):
    assert P(nu=value).nu == value


@pytest.mark.parametrize("kw, message", [
    ({"nu": -0.1}, "nu=-0.1 is out of range; allowed [0.0, 1.0]"),
    ({"nu": 1.5}, "nu=1.5 is out of range; allowed [0.0, 1.0]"),
    ({"nu": math.nan}, "nu=nan is out of range; allowed [0.0, 1.0]"),
    ({"k": 1}, "k=1 is out of range; allowed (1, inf)"),
    ({"k": 0}, "k=0 is out of range; allowed (1, inf)"),
    ({"auto": -1}, "auto=-1 is out of range; allowed [0, inf)"),
    ({"free": math.inf}, "free=inf: must be a finite number"),
    ({"scheme": "c"}, "scheme='c' is not allowed; choose one of ['a', 'b']"),
    ({"k": 2.5}, "k=2.5: expected int"),
    ({"k": True}, "k=True: expected int"),
    ({"nu": "0.5"}, "nu='0.5': expected float"),
    ({"flag": 1}, "flag=1: expected bool"),
    ({"box": 3}, "box=3: expected tuple"),
    ({"scheme": 3}, "scheme=3: expected str"),
])
def test_bad_values_name_the_field_and_the_rule(kw, message):
    with pytest.raises(ValueError) as e:
        P(**kw)
    assert str(e.value) == message


def test_param_records_its_rule():
    f = param(0.5, "a rate", range=(0.0, None), choices=(0.5, 1.0), open_low=True)
    assert f.default == 0.5
    assert dict(f.metadata) == {"doc": "a rate", "range": (0.0, None), "choices": (0.5, 1.0),
                                "open_low": True}

    @dataclass(frozen=True)
    class Q(Params):
        rate: float = param(0.5, "a rate", range=(0.0, None), choices=(0.5, 1.0), open_low=True)
    assert Q(rate=1.0).rate == 1.0
    with pytest.raises(ValueError, match=r"^rate=0.75 is not allowed; choose one of \[0.5, 1.0\]$"):
        Q(rate=0.75)


def test_upper_bound_only():
    @dataclass(frozen=True)
    class Cap(Params):
        cap: float = param(0.5, "at most one", range=(None, 1.0))
    assert Cap(cap=-1e9).cap == -1e9
    with pytest.raises(ValueError) as e:
        Cap(cap=2.0)
    assert str(e.value) == "cap=2.0 is out of range; allowed (-inf, 1.0]"


def test_open_low_bound_excludes_only_the_bound():
    assert P(k=2).k == 2
    assert P(auto=0).auto == 0


@pytest.mark.parametrize("text, field, value", [
    (" 0.25 ", "nu", 0.25), ("3", "k", 3), ("none", "auto", None), ("NULL", "auto", None),
    ("7", "auto", 7), ("b", "scheme", "b"), ("(3, 4.5)", "box", (3.0, 4.5)),
    ("[1,2,]", "box", (1.0, 2.0)), ("true", "flag", True), ("Yes", "flag", True),
    ("1", "flag", True), ("false", "flag", False), ("0", "flag", False), ("no", "flag", False),
])
def test_from_mapping_parses_strings(text, field, value):
    assert getattr(P.from_mapping({field: text}), field) == value


def test_from_mapping_tries_each_type_of_a_union():
    @dataclass(frozen=True)
    class U(Params):
        mode: bool | str = param(False, "a switch or a named mode")
        size: int | float = param(1, "count or fraction")
    assert U.from_mapping({"mode": "auto", "size": "0.5"}) == U(mode="auto", size=0.5)
    assert U.from_mapping({"mode": "yes", "size": "3"}) == U(mode=True, size=3)


def test_from_mapping_keeps_non_strings_and_turns_lists_into_tuples():
    p = P.from_mapping({"nu": 0.75, "box": [5, 6]})
    assert (p.nu, p.box) == (0.75, (5, 6))


@pytest.mark.parametrize("values, message", [
    ({"nu": "fast"}, "nu='fast': expected float"),
    ({"flag": "maybe"}, "flag='maybe': expected bool"),
    ({"k": "none"}, "k='none': expected int"),
    ({"bad": 1, "worse": 2}, "unknown parameter(s) ['bad', 'worse']; allowed: ['auto', 'box', "
                             "'flag', 'free', 'k', 'nu', 'scheme']"),
])
def test_from_mapping_errors(values, message):
    with pytest.raises(ValueError) as e:
        P.from_mapping(values)
    assert str(e.value) == message


def test_defaults_subclass_changes_defaults_and_keeps_rules():
    Q = P.defaults(nu=0.75, k=5)
    assert (Q().nu, Q().k, Q().free) == (0.75, 5, 1.5)
    assert Q.__name__ == "P" and Q.__module__ == P.__module__ and issubclass(Q, P)
    assert Q.field_docs()["nu"] == "viscosity"
    with pytest.raises(ValueError, match=r"nu=2.0 is out of range; allowed \[0.0, 1.0\]"):
        Q(nu=2.0)
    with pytest.raises(ValueError, match=r"^P.defaults: unknown field\(s\) \['x', 'y'\]$"):
        P.defaults(y=1, x=2)


def test_validate_runs_after_the_field_checks():
    @dataclass(frozen=True)
    class R(P):
        def validate(self):
            if self.nu > self.free:
                raise ValueError("nu must not exceed free")
    assert R(nu=1.0, free=1.0).nu == 1.0
    with pytest.raises(ValueError, match="nu must not exceed free"):
        R(nu=1.0, free=0.5)


def test_dirichlet_condition_residual():
    u, g = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5])
    c = dirichlet("left", "x", 0.0, "u")
    assert (c.name, c.coord, c.value, c.sets) == ("left", "x", 0.0, ("u", None))
    assert torch.equal(c.residual({"u": u}, {}), u)
    c = dirichlet("top", "y", 1.0, "u", "g")
    assert c.sets == ("u", "g")
    assert torch.equal(c.residual({"u": u, "g": g}, {}), torch.tensor([0.5, 1.5]))


def test_solver_diverged_keeps_samples():
    assert SolverDiverged("boom", [3, 1]).samples == [3, 1]
    assert SolverDiverged("boom").samples == []
    assert str(SolverDiverged("boom")) == "boom"


def test_protocol_defaults_say_what_is_missing():
    class Bare(PDE):
        name = "bare"
        Params = P
        variables = {"u": base.Variable(("sample", "x"), "1", "u")}
    pde = Bare()
    assert pde.stored_variables(P()) == ["u"]
    assert pde.make_params({"nu": "0.125"}).nu == 0.125
    assert pde.make_params() == P()
    for call, message in [(lambda: pde.residual({}, {}, P()), "bare: residual is not implemented"),
                          (lambda: pde.domain(P()), "bare: no pointwise domain is declared"),
                          (lambda: pde.point_sample(P(), {}),
                           "bare: its inputs cannot be evaluated at points"),
                          (lambda: pde.exact(P()), "bare: no closed-form solution")]:
        with pytest.raises(NotImplementedError) as e:
            call()
        assert str(e.value) == message


def test_registry(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_load_entry_points", lambda: None)

    class Mine(PDE):
        name = "mine-test"
    assert base.register(Mine) is Mine
    assert isinstance(pdes.get("mine-test"), Mine)
    assert "mine-test" in pdes.available() and pdes.available() == sorted(pdes.available())
    with pytest.raises(KeyError, match="unknown PDE 'nope'; known: .*mine-test"):
        pdes.get("nope")

    class Nameless(PDE):
        pass
    with pytest.raises(ValueError, match="^Nameless: a PDE needs a non-empty `name`$"):
        base.register(Nameless)


def test_get_loads_entry_points_only_for_unknown_names(monkeypatch):
    calls = []
    monkeypatch.setattr(base, "_load_entry_points", lambda: calls.append(1))
    assert pdes.get("ns2d").name == "ns2d" and calls == []
    with pytest.raises(KeyError):
        pdes.get("no-such-pde")
    assert len(calls) == 2  # once to look, once more to list the known names


def test_broken_entry_point_is_skipped_with_one_warning(monkeypatch, capsys):
    def load():
        raise ImportError("no  module\n named x")
    ep = SimpleNamespace(name="broken-test", value="pkg:Cls", load=load)
    good = SimpleNamespace(name="good-test", value="pkg:Good", load=lambda: "GoodClass")
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep, good]
                        if group == "sciops.pdes" else [])
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_BROKEN", set())
    base._load_entry_points()
    base._load_entry_points()
    assert base._REGISTRY["good-test"] == "GoodClass" and "broken-test" not in base._REGISTRY
    assert capsys.readouterr().err == ("sciops: warning: skipped PDE plug-in broken-test = "
                                       "pkg:Cls: ImportError: no module named x\n")


def test_none_is_allowed_where_the_type_admits_it_and_refused_elsewhere():
    @dataclass(frozen=True)
    class P(Params):
        skip: str | None = param("linear", "a choice that may be switched off",
                                 choices=("linear", "soft"))
        width: int = param(3, "a count", range=(1, None))

    assert P(skip=None).skip is None and P.from_mapping({"skip": "none"}).skip is None
    with pytest.raises(ValueError, match="width=None: expected int"):
        P(width=None)
    with pytest.raises(ValueError, match="skip='hard' is not allowed"):
        P(skip="hard")
