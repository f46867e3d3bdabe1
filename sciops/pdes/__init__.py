"""PDE families. Importing this package registers the built-in ones."""

from sciops.pdes import (
    antiderivative1d,  # noqa: F401  (registers "antiderivative1d")
    catalog,  # noqa: F401  (registers the semilinear catalog)
    darcy2d,  # noqa: F401  (registers "darcy2d")
    les3d,  # noqa: F401  (registers "les3d")
    mpm2d,  # noqa: F401  (registers "mpm2d")
    ns2d,  # noqa: F401  (registers "ns2d")
    poisson2d,  # noqa: F401  (registers "poisson2d")
    steady,  # noqa: F401  (registers poisson1d, allencahn-steady1d/2d, helmholtz1d/2d, ...)
    wave2d,  # noqa: F401  (registers "wave2d")
)
from sciops.pdes.base import (
    PDE,
    Condition,
    Domain,
    Params,
    PointSample,
    SolverDiverged,
    Variable,
    available,
    dirichlet,
    get,
    param,
    register,
)

__all__ = ["PDE", "Condition", "Domain", "Params", "PointSample", "SolverDiverged", "Variable",
           "available", "dirichlet", "get", "param", "register"]
