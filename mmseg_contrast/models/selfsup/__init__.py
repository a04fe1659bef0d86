"""Self-supervised pre-training modules registered into **mmpretrain's**
registries (pre-training configs run with ``default_scope='mmpretrain'``)."""
from .densecl import (CheckedDenseCL, DenseCLConfigError,  # noqa: F401
                      check_densecl_backbone_output, check_densecl_queue,
                      check_densecl_static)
from .seg_backbones import SegMobileNetV2  # noqa: F401
