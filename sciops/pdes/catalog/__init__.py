"""The catalog of periodic PDE families defined once (see :mod:`sciops.pdes.semilinear`).
Importing this package registers them."""

from sciops.pdes.catalog import burgers  # noqa: F401
