"""Fixtures for the tool tests (see tool_helpers.py)."""
import pytest
from tool_helpers import CONTRAST_OPTIONS, save_model


@pytest.fixture(scope='session')
def aal_options(aal_root):
    # the first 4 real validation slices, single process
    return {
        'val_dataloader.dataset.data_root': aal_root,
        'val_dataloader.dataset.indices': 4,
    }


@pytest.fixture(scope='session')
def ce_ckpt(tmp_path_factory):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    return save_model({}, tmp_path_factory.mktemp('ce') / 'ce.pth', 0)


@pytest.fixture(scope='session')
def contrast_ckpt(tmp_path_factory):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    return save_model(CONTRAST_OPTIONS,
                       tmp_path_factory.mktemp('con') / 'contrast.pth', 1)
