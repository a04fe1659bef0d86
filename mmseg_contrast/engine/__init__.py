"""Hooks and loops registered into mmseg's registries."""
from . import hooks, runner  # noqa: F401
