"""The stand-in values of :mod:`mmseg_contrast.checkpoint.pickle_scan`.

Scalars, short strings, tuples and numpy dtypes are kept as they are;
containers and long strings are a size: :class:`_Box` (a list or dict keeps
its items as references, so nested sizes and literal arguments can be
read), :class:`_Blob` (a long str / bytes). Costs are upper bounds of
CPython's object sizes (64-bit).
"""
import numpy as np

__all__ = ['ScanRefusal', 'SLOT', 'OBJ', 'ENTRY', 'TENSOR', 'MEMO',
           'PICKLE_FACTOR']

#: bytes of objects a pickle may build per byte of itself, beyond the limit
PICKLE_FACTOR = 4

SLOT = 8  # one reference (a list/stack slot)
OBJ = 64  # a small object (int, float, empty container, HistoryBuffer)
ENTRY = 96  # one dict / set entry, amortised over the table's growth
TENSOR = 384  # a tensor or storage object, without its data
MEMO = 64  # one memo entry
#: strings up to this many bytes are decoded and kept as values
SHORT = 4096
#: lists / dicts up to this many items can become literal arguments
LITERAL_ITEMS = 4096


class ScanRefusal(Exception):
    """The pickle is refused: ``reason`` is ``'budget'`` (it would build
    more than allowed), ``'unsupported'`` (a construct no checkpoint writer
    produces and that cannot be bounded) or ``'corrupt'``."""

    def __init__(self, reason, what, cost=0, read=0):
        super().__init__(what)
        self.reason, self.what, self.cost, self.read = reason, what, cost, read


class _Stop(Exception):
    """torch's unpickler fails at this point too: the walk ends here."""


class _G:
    """A resolved global: its dotted name and the object torch uses."""
    __slots__ = ('name', 'obj')

    def __init__(self, name, obj):
        self.name, self.obj = name, obj

    @property
    def short(self):
        return self.name.rsplit('.', 1)[-1]


class _Blob:
    """A str or bytes too long to keep: its length."""
    __slots__ = ('kind', 'n')

    def __init__(self, kind, n):
        self.kind, self.n = kind, n


class _Box:
    """A container or object: ``kind`` is list, dict, set, range, ndarray,
    tensor, storage, cfgdict, obj (a known object) or any (the result of a
    global allowlisted by someone else); ``n`` its length / element count
    (None: unknown); ``items`` the references of a list (values) or dict
    ((key, value) pairs; None while empty, or when unknown: a list of
    fewer than ``n`` items is never read as a literal), or a storage's
    element size."""
    __slots__ = ('kind', 'n', 'items')

    def __init__(self, kind, n=0, items=None):
        self.kind, self.n, self.items = kind, n, items


def describe(v):
    if isinstance(v, _Box):
        return f'a {v.kind} of {v.n} items'
    if isinstance(v, _Blob):
        return f'a {v.kind} of {v.n} characters'
    return type(v).__name__


def length(v, what, default=None):
    """How many items iterating ``v`` yields (an upper bound)."""
    if isinstance(v, (str, bytes, tuple, np.dtype)):
        return len(v)
    if isinstance(v, (_Box, _Blob)) and v.n is not None and \
            not (isinstance(v, _Box) and v.kind in ('obj', 'any', 'cfgdict')):
        return v.n
    if v is None or isinstance(v, (int, float)):
        return 0  # not iterable: the call fails at load time
    if default is not None:
        return default
    raise ScanRefusal('unsupported', f'{what} of {describe(v)}, whose size '
                      f'cannot be checked before loading')


def complete_items(v):
    """The items of a list / dict box, or None if some are unknown."""
    items = v.items if isinstance(v.items, list) else []
    return items if len(items) == (v.n or 0) else None


def as_args(v, name):
    """The arguments of a call (torch unpacks any iterable; pickles write
    a tuple)."""
    if isinstance(v, tuple):
        return v
    if isinstance(v, _Box) and v.kind == 'list':
        items = complete_items(v)
        if items is not None:
            return tuple(items)
    raise ScanRefusal('unsupported', f'a call of {name} with its arguments '
                      f'given as {describe(v)}')


def concrete(v, what):
    """``v`` as a plain Python value (a literal argument), or refuse."""
    if v is None or isinstance(v, (bool, int, float, str, bytes, np.dtype)):
        return v
    if isinstance(v, tuple):
        return tuple(concrete(x, what) for x in v)
    if isinstance(v, _Box) and v.kind in ('list', 'dict') and \
            (v.n or 0) <= LITERAL_ITEMS and complete_items(v) is not None:
        items = complete_items(v)
        if v.kind == 'list':
            return [concrete(x, what) for x in items]
        return {concrete(k, what): concrete(x, what) for k, x in items}
    raise ScanRefusal('unsupported', f'{what} given as {describe(v)}, not as '
                      f'a literal')


def expand(v, cap):
    """``(dicts, entries)`` of ``v`` expanded as a tree (a dict referenced
    twice counts twice: ConfigDict copies nested dicts), stopping past
    ``cap``."""
    nodes = entries = 0
    todo = [v]
    while todo and nodes + entries <= cap:
        x = todo.pop()
        if isinstance(x, tuple):
            entries += len(x)
            todo.extend(x)
        elif isinstance(x, _Box) and x.kind in ('dict', 'list'):
            items = complete_items(x)
            if items is None:
                raise ScanRefusal('unsupported', f'a ConfigDict of '
                                  f'{describe(x)} whose content cannot be '
                                  f'checked')
            nodes += 1
            entries += len(items)
            for item in items:
                todo.append(item[1] if x.kind == 'dict' else item)
    return nodes, entries
