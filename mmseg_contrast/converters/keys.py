"""Key helpers shared by every converter (and the analysis tools).

* :func:`state_dict_of` - the weights held by a loaded checkpoint
  (``state_dict`` / ``model`` entry, or a bare ``{name: tensor}`` dict);
* :func:`strip_module` - drop the ``module.`` prefix a DDP-wrapped save puts
  on *every* key (a dict where only some keys carry it is left as it is:
  there ``module.`` is a real sub-module name);
* :func:`abbrev` - a short, sorted listing of keys for error messages.
"""
from collections import OrderedDict

import torch

__all__ = ['abbrev', 'state_dict_of', 'strip_module']


def abbrev(keys, n=8):
    """``'a, b, c, ... (+N more)'`` of the sorted ``keys``."""
    keys = sorted(keys)
    s = ', '.join(keys[:n])
    return s + (f', ... (+{len(keys) - n} more)' if len(keys) > n else '')


def state_dict_of(ckpt, what='checkpoint'):
    """Return the state dict held by a loaded checkpoint.

    Raises:
        TypeError: ``ckpt`` is not a dict.
        ValueError: no ``state_dict`` / ``model`` entry and not a bare
            ``{name: tensor}`` dict.
    """
    if not isinstance(ckpt, dict):
        raise TypeError(f'a {what} must be a dict, got {type(ckpt).__name__}')
    for key in ('state_dict', 'model'):
        if key in ckpt and isinstance(ckpt[key], dict):
            return ckpt[key]
    if ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
        return ckpt
    raise ValueError(
        'cannot find the weights in this checkpoint: expected a '
        "'state_dict' (or 'model') entry or a bare {name: tensor} dict, got "
        f'top-level keys {abbrev(list(ckpt))}')


def strip_module(state_dict):
    """A new ``OrderedDict`` without the DDP ``module.`` prefix (removed only
    when every key carries it)."""
    if state_dict and all(k.startswith('module.') for k in state_dict):
        return OrderedDict((k[len('module.'):], v)
                           for k, v in state_dict.items())
    return OrderedDict(state_dict)
