"""Build-time validation of the numeric options of the plugin's classes.

Every loss, head, memory bank, segmentor, hook and sampler of the package
checks its numeric ``__init__`` options with these functions, so a bad
config value fails when the config is built, with one error naming the
class, the option, the value and the valid range, instead of a zero loss,
NaN gradients or a crash after the first optimizer step::

    check_range('ReCoLoss', 'strong_threshold', 0.0, 0, 1, low_open=True)
    # ValueError: ReCoLoss: strong_threshold=0.0 is invalid; it must be a
    # finite number in (0, 1]

A value of the wrong type raises :class:`OptionTypeError`, which is both a
``TypeError`` and a ``ValueError``. NaN and infinity are always refused.
Each function returns the value unchanged, so valid configs behave exactly
as before. Standard library only: any module of the package may import it
without an import cycle.
"""
import math
import numbers
from typing import Any, Callable, Optional

__all__ = [
    'OptionTypeError', 'check_range', 'check_int', 'check_positive_int',
    'check_nonneg_int', 'check_positive', 'check_finite_nonneg',
    'check_probability', 'check_bool', 'check_optional'
]


class OptionTypeError(TypeError, ValueError):
    """An option of the wrong type (also a ``ValueError``, so one ``except
    ValueError`` catches every invalid option)."""


def _bound(x) -> str:
    return f'{x:g}' if isinstance(x, float) else str(x)


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    left = '(' if low is None or low_open else '['
    right = ')' if high is None or high_open else ']'
    lo = '-inf' if low is None else _bound(low)
    hi = 'inf' if high is None else _bound(high)
    return f'{left}{lo}, {hi}{right}'


def _message(owner: str, name: str, value: Any, expected: str,
             hint: str) -> str:
    msg = f'{owner}: {name}={value!r} is invalid; it must be {expected}'
    return f'{msg} ({hint})' if hint else msg


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_range(owner: str,
                name: str,
                value,
                low=None,
                high=None,
                *,
                low_open: bool = False,
                high_open: bool = False,
                hint: str = ''):
    """``value`` if it is a finite real number in the interval ``low`` ..
    ``high`` (``None``: unbounded; ``low_open`` / ``high_open`` exclude the
    bound); otherwise :class:`OptionTypeError` (not a number) or
    ``ValueError`` naming ``owner``, ``name``, the value and the range.
    ``hint`` (optional) says what the bounds mean or how to fix it."""
    expected = 'a finite number in ' + _interval(low, high, low_open,
                                                 high_open)
    if not _is_real(value):
        raise OptionTypeError(
            _message(owner, name, value,
                     f'{expected}, not a {type(value).__name__}', hint))
    # ints are finite (and may be too large for math.isfinite)
    ok = isinstance(value, numbers.Integral) or math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(_message(owner, name, value, expected, hint))
    return value


def check_int(owner: str,
              name: str,
              value,
              low: Optional[int] = None,
              high: Optional[int] = None,
              *,
              hint: str = ''):
    """``value`` if it is an int (not a bool; numpy ints count) in
    ``[low, high]`` (``None``: unbounded), else the error as
    :func:`check_range`."""
    expected = 'an int in ' + _interval(low, high, False, False)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise OptionTypeError(
            _message(owner, name, value,
                     f'{expected}, not a {type(value).__name__}', hint))
    if (low is not None and value < low) or (high is not None
                                             and value > high):
        raise ValueError(_message(owner, name, value, expected, hint))
    return value


def check_positive_int(owner: str, name: str, value, *, hint: str = ''):
    """A size or count: an int >= 1."""
    return check_int(owner, name, value, 1, hint=hint)


def check_nonneg_int(owner: str, name: str, value, *, hint: str = ''):
    """An int >= 0 (e.g. a number of warm-up iterations, 0 = none)."""
    return check_int(owner, name, value, 0, hint=hint)


def check_positive(owner: str, name: str, value, *, hint: str = ''):
    """A finite number > 0 (temperatures, epsilons, scales)."""
    return check_range(owner, name, value, 0, low_open=True, hint=hint)


def check_finite_nonneg(owner: str, name: str, value, *, hint: str = ''):
    """A finite number >= 0 (loss weights; 0 switches a term off)."""
    return check_range(owner, name, value, 0, hint=hint)


def check_probability(owner: str,
                      name: str,
                      value,
                      *,
                      zero_ok: bool = False,
                      hint: str = ''):
    """A probability or threshold: in ``(0, 1]``, or ``[0, 1]`` with
    ``zero_ok`` (where 0 has a documented meaning, e.g. "off")."""
    return check_range(owner, name, value, 0, 1, low_open=not zero_ok,
                       hint=hint)


def check_bool(owner: str, name: str, value, *, hint: str = ''):
    """``value`` if it is a bool (a string such as ``'False'`` would be
    truthy), else :class:`OptionTypeError`."""
    if not isinstance(value, bool):
        raise OptionTypeError(
            _message(owner, name, value,
                     f'True or False, not a {type(value).__name__}', hint))
    return value


def check_optional(check: Callable, owner: str, name: str, value, *args,
                   **kwargs):
    """``None``, or ``check(owner, name, value, *args, **kwargs)``."""
    if value is None:
        return None
    return check(owner, name, value, *args, **kwargs)
