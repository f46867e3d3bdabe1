"""The catalog of periodic PDE families defined once (see :mod:`sciops.pdes.semilinear`).
Importing this package registers them."""

from sciops.pdes.catalog import (
    advection,  # noqa: F401
    advection_diffusion,  # noqa: F401
    allen_cahn,  # noqa: F401
    burgers,  # noqa: F401
    burgers2d,  # noqa: F401
    fisher_kpp,  # noqa: F401
    gray_scott,  # noqa: F401
    heat,  # noqa: F401
    kdv,  # noqa: F401
    ks1d,  # noqa: F401
    ks2d,  # noqa: F401
    swift_hohenberg,  # noqa: F401
)
