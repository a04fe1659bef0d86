"""Tooling behind ``tools/``: data preparation, analysis, run comparison and
model-zoo publishing.

* :mod:`.data` - offline data sets and ImageNet weights from the package
  registries (``tools/dataset_converters/``); :mod:`.offline_data` is its
  first name, kept as a re-export;
* :mod:`.embedding_analysis`, :mod:`.figures`, :mod:`.pseudo_label_stats` -
  the analysis tools (``tools/analysis/``);
* :mod:`.paired_stats`, :mod:`.compare`, :mod:`.accuracy_suite` - comparing
  recipes over seeds (``compare_runs.py``, ``bench_accuracy.py``);
* :mod:`.publish`, :mod:`.model_zoo` - publishing checkpoints.

The runtime (``import mmseg_contrast``, training, inference) never imports
this sub-package (``tests/test_layout`` checks it); scripts under ``tools/``
import it as ``mmseg_contrast.tooling.<module>`` and nothing here imports
``tools/``.
"""
