"""Hooks and loops registered into mmseg's registries."""
from . import hooks, runner

__all__ = [
    'hooks', 'runner'
]
