"""PDE families. Importing this package registers the built-in ones."""

from sciops.pdes import ns2d  # noqa: F401  (registers "ns2d")
from sciops.pdes.base import PDE, Params, SolverDiverged, Variable, available, get, param, register

__all__ = ["PDE", "Params", "SolverDiverged", "Variable", "available", "get", "param", "register"]
