"""Datasets, transforms and samplers registered into mmseg's registries."""
from . import samplers, transforms  # noqa: F401
