"""PDE families. Importing this package registers the built-in ones."""

from sciops.pdes import ns2d  # noqa: F401  (registers "ns2d")
from sciops.pdes import les3d  # noqa: F401  (registers "les3d")
from sciops.pdes import darcy2d  # noqa: F401  (registers "darcy2d")
from sciops.pdes import poisson2d  # noqa: F401  (registers "poisson2d")
from sciops.pdes import wave2d  # noqa: F401  (registers "wave2d")
from sciops.pdes import antiderivative1d  # noqa: F401  (registers "antiderivative1d")
from sciops.pdes import mpm2d  # noqa: F401  (registers "mpm2d")
from sciops.pdes.base import PDE, Params, SolverDiverged, Variable, available, get, param, register

__all__ = ["PDE", "Params", "SolverDiverged", "Variable", "available", "get", "param", "register"]
