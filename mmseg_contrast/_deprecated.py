"""Old import paths kept for one release (they warn).

A moved module's old file calls :func:`alias_module`, which makes the old
name the *same module object* as the new one (so ``from old import x``,
attribute access and monkeypatching behave exactly as before) and warns
with a :class:`DeprecationWarning` naming the new path.
"""
import importlib
import sys
import warnings

__all__ = ['alias_module', 'warn_moved']


def warn_moved(old: str, new: str, stacklevel: int = 3) -> None:
    warnings.warn(
        f'{old} is deprecated and will be removed in the next release: '
        f'import {new} instead.', DeprecationWarning, stacklevel=stacklevel)


def alias_module(old: str, new: str):
    """Make module ``old`` an alias of module ``new`` (imported here)."""
    warn_moved(old, new, stacklevel=4)
    module = importlib.import_module(new)
    sys.modules[old] = module
    return module
