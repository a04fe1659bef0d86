"""The embedded accuracy suite (``tools/analysis/bench_accuracy.py``,
``make bench-accuracy``; protocol: ``configs/bench/README.md``).

* :mod:`.protocol` - arms, comparisons, DenseCL pre-training config and the
  discarded settings;
* :mod:`.pretrain` - the per-seed DenseCL pre-training and conversion;
* :mod:`.run` - :func:`run_suite`, every comparison through
  :func:`mmseg_contrast.tooling.compare.run_comparison`;
* :mod:`.summary` / :mod:`.figure` - the suite JSON, its README table and
  its figure;
* :mod:`.log` - the progress lines.
"""
from .figure import plot_suite
from .log import say
from .pretrain import (
    check_pretrain_length,
    densecl_arm,
    densecl_iters,
    densecl_pretrain,
    densecl_pretrain_dir,
    pretrain_and_convert,
    pretrain_cfg,
)
from .protocol import (
    ARMS,
    COMPARISONS,
    DENSECL_MMSEG,
    DENSECL_PRETRAIN,
    DISCARDED,
)
from .run import run_suite
from .summary import (
    ci_text,
    discarded_protocols,
    markdown_table,
    suite_entry,
    write_suite,
)

__all__ = [
    'plot_suite', 'say', 'check_pretrain_length', 'densecl_arm',
    'densecl_iters', 'densecl_pretrain', 'densecl_pretrain_dir',
    'pretrain_and_convert', 'pretrain_cfg', 'ARMS', 'COMPARISONS',
    'DENSECL_MMSEG', 'DENSECL_PRETRAIN', 'DISCARDED', 'run_suite',
    'ci_text', 'discarded_protocols', 'markdown_table', 'suite_entry',
    'write_suite'
]
