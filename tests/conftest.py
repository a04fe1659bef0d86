"""Shared pytest fixtures.

Real offline data (see README "Data") is prepared once by
``make data`` / ``tools/dataset_converters/prepare_offline_data.py`` and
cached; the fixtures call the same (idempotent) preparers.
"""
import os.path as osp

import pytest

import mmseg_contrast  # noqa: F401  (compat layer + registration)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True)
def _mmseg_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    yield


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def voc_mini_root():
    from mmseg_contrast.tooling import offline_data
    return offline_data.prepare_voc_mini()


@pytest.fixture(scope='session')
def aal_root():
    from mmseg_contrast.tooling import offline_data
    return offline_data.prepare_aal_slices()


@pytest.fixture(scope='session')
def mobilenetv2_ckpt():
    from mmseg_contrast.tooling import offline_data
    return offline_data.prepare_mobilenetv2()
