"""The offline-data API under its first name (kept for existing callers).

Everything lives in :mod:`mmseg_contrast.tooling.data` (one module per
concern: cache / locks / manifests, registry downloads, and one per data
set); this module re-exports its public names, so
``offline_data.prepare_voc_mini()`` etc. keep working. New code imports
:mod:`mmseg_contrast.tooling.data`. To monkeypatch a download, patch the
module that calls it (:mod:`mmseg_contrast.tooling.data.fetch`), not this
one.
"""
from .data import *  # noqa: F403  (the public names)
from .data import __all__  # noqa: F401
