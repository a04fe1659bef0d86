from .semi_transforms import PackSemiInputs, StrongView

__all__ = [
    'PackSemiInputs', 'StrongView'
]
