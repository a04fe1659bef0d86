from .semi_transforms import PackSemiInputs, StrongView  # noqa: F401
