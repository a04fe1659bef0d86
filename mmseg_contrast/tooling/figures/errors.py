"""The error of the figure helpers for input they cannot draw (wrong
number of names, nothing to plot, models that cannot be compared); the
command-line tools report it as a one-line exit."""

__all__ = ['FigureInputError']


class FigureInputError(ValueError):
    """Inputs a figure cannot be drawn from (a one-line message)."""
