"""Fixtures for the tool tests (see tests/helpers/tool_helpers.py)."""
import os.path as osp

import pytest

from helpers.tool_helpers import CONTRAST_OPTIONS, save_model
from helpers.tool_loading import load_tool

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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


@pytest.fixture(scope='session')
def split_files(tmp_path_factory, aal_root):
    """The 5 % labelled / unlabelled split of the demo (documented tool)."""
    reco_partial_dataset = load_tool(
        'dataset_converters/reco_partial_dataset.py')
    out = tmp_path_factory.mktemp('splits')
    lab, unl = str(out / 'lab.txt'), str(out / 'unl.txt')
    reco_partial_dataset.main([
        osp.join(_REPO, 'configs', 'baseline', 'deeplabv3_mnv2_aal_cpu.py'),
        '--fraction', '0.05', '--min-classes', '1', '--seed', '0',
        '--labeled-file', lab, '--unlabeled-file', unl, '--cfg-options',
        f'train_dataloader.dataset.data_root={aal_root}'
    ])
    return lab, unl
