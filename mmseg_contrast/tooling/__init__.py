"""Tooling behind ``tools/``: data preparation, embedding analysis, paired
statistics, the run-comparison library and model-zoo publishing.

The runtime (``import mmseg_contrast``, training, inference) never imports
this sub-package (``tests/test_layout`` checks it); scripts under ``tools/``
import it as ``mmseg_contrast.tooling.<module>``.
"""
