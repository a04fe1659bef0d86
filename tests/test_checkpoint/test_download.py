"""Checksummed URL checkpoint downloads, against a local HTTP server."""
import hashlib
import io
import os
import os.path as osp
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from mmseg_contrast.checkpoint import UnsafeCheckpointError
from mmseg_contrast.checkpoint.download import (
    ChecksumError,
    DownloadError,
    download_checkpoint,
    hash_prefix_from_url,
    load_from_http,
    url_cache_path,
)

from helpers.local_http_server import FileServer
from helpers.reliab_helpers import TINY_CFG, data_options
from helpers.tool_loading import load_tool


def _ckpt_bytes(seed=0, extra=None):
    torch.manual_seed(seed)
    model = nn.Conv2d(3, 4, 3)
    state = {'state_dict': model.state_dict(), 'meta': {'epoch': 1}}
    if extra:
        state.update(extra)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue(), model


def _named(data, stem='tiny'):
    return f'/zoo/{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


@pytest.fixture
def cache(tmp_path, monkeypatch):
    # the default cache is torch.hub.get_dir()/checkpoints
    hub = tmp_path / 'hub'
    monkeypatch.setattr(torch.hub, '_hub_dir', str(hub))
    return hub / 'checkpoints'


def _files(folder):
    return sorted(p.name for p in folder.rglob('*') if p.is_file())


def _keyed(server, path, cache):
    """The URL-keyed cache file of ``path`` (a pathlib.Path)."""
    import pathlib
    return pathlib.Path(url_cache_path(server.url(path), str(cache)))


def test_hash_prefix_from_url():
    assert hash_prefix_from_url(
        'https://download.openmmlab.com/a/x_20220825-3078723b.pth') == \
        '3078723b'
    assert hash_prefix_from_url('https://h.co/densecl_r50_200ep.pth') is None
    assert hash_prefix_from_url('https://h.co/a-3078723b.pth?x=1') == \
        '3078723b'
    # a release date is not a sha256 prefix (only hex digits, 8 of them)
    assert hash_prefix_from_url('https://h.co/model-20210302.pth') is None
    assert hash_prefix_from_url('https://h.co/m_20220825-20210302.pth') is None
    assert hash_prefix_from_url('https://h.co/a-12345678.pth') == '12345678'
    assert hash_prefix_from_url('https://h.co/a-20211399.pth') == '20211399'


def test_date_suffixed_file_is_kept(server, cache):
    data, model = _ckpt_bytes()
    server.files['/zoo/model-20210302.pth'] = data
    with pytest.warns(UserWarning, match='cannot be verified'):
        ckpt = load_from_http(server.url('/zoo/model-20210302.pth'))
    assert torch.equal(ckpt['state_dict']['weight'], model.weight)
    assert _files(cache) == ['model-20210302.pth']


def test_cache_is_keyed_by_url(server, cache):
    """Two URLs ending in the same file name are two cache entries."""
    a, model_a = _ckpt_bytes(seed=1)
    b, model_b = _ckpt_bytes(seed=2)
    server.files['/a/good.pth'] = a
    server.files['/b/good.pth'] = b
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # unverifiable names
        ckpt_a = load_from_http(server.url('/a/good.pth'))
        ckpt_b = load_from_http(server.url('/b/good.pth'))
        again_a = load_from_http(server.url('/a/good.pth'))
    assert torch.equal(ckpt_a['state_dict']['weight'], model_a.weight)
    assert torch.equal(ckpt_b['state_dict']['weight'], model_b.weight)
    assert torch.equal(again_a['state_dict']['weight'], model_a.weight)
    assert [r[0] for r in server.requests] == ['/a/good.pth', '/b/good.pth']
    pa, pb = (url_cache_path(server.url(p), str(cache))
              for p in ('/a/good.pth', '/b/good.pth'))
    assert pa != pb and osp.basename(pa) == osp.basename(pb) == 'good.pth'


def test_verified_flat_cache_file_is_reused(server, cache):
    """A hash-named file directly in the hub folder (torch.hub / mmengine
    layout) is used if its bytes match; a mismatching one is left alone."""
    data, _ = _ckpt_bytes()
    path = _named(data)
    cache.mkdir(parents=True)
    flat = cache / osp.basename(path)
    flat.write_bytes(data)
    assert download_checkpoint(server.url(path)) == str(flat)
    assert server.requests == []
    flat.write_bytes(data[:100])  # another file under that name
    server.files[path] = data
    local = download_checkpoint(server.url(path))
    assert local == str(_keyed(server, path, cache))
    assert flat.read_bytes() == data[:100] and len(server.requests) == 1


def test_good_file_into_torch_hub_cache(server, cache):
    data, model = _ckpt_bytes()
    path = _named(data)
    server.files[path] = data
    ckpt = load_from_http(server.url(path), map_location='cpu')
    assert torch.equal(ckpt['state_dict']['weight'], model.weight)
    local = _keyed(server, path, cache)
    assert local.read_bytes() == data
    assert local.parent.parent == cache
    assert not osp.exists(str(local) + '.partial')
    assert server.requests == [(path, None)]


def test_cache_hit_makes_no_request(server, cache):
    data, _ = _ckpt_bytes()
    path = _named(data)
    server.files[path] = data
    download_checkpoint(server.url(path))
    server.requests.clear()
    server.files.clear()  # the server no longer has it: offline
    local = download_checkpoint(server.url(path))
    assert server.requests == []
    assert Path(local).read_bytes() == data


def test_corrupted_download_deleted_not_loaded(server, cache):
    data, _ = _ckpt_bytes()
    path = _named(data)
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    server.files[path] = bytes(bad)
    with pytest.raises(ChecksumError, match='Checksum mismatch.*deleted'):
        load_from_http(server.url(path))
    assert _files(cache) == []


def test_truncated_download_deleted(server, cache):
    data, _ = _ckpt_bytes()
    path = _named(data)
    server.files[path] = data[:len(data) // 3]  # consistent Content-Length
    with pytest.raises(ChecksumError, match='corrupted or truncated'):
        download_checkpoint(server.url(path), retry_delay=0)
    assert _files(cache) == []


def test_corrupted_cache_file_is_deleted(server, cache):
    data, _ = _ckpt_bytes()
    path = _named(data)
    local = _keyed(server, path, cache)
    local.parent.mkdir(parents=True)
    local.write_bytes(data[:100])
    with pytest.raises(ChecksumError, match='cached file'):
        download_checkpoint(server.url(path))
    assert _files(cache) == []
    assert server.requests == []


def test_server_down_clear_error(cache):
    with FileServer() as srv:  # grab a free port, then close it
        url = srv.url('/zoo/x-0123abcd.pth')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(DownloadError) as e:
            download_checkpoint(url, retries=2, retry_delay=0, timeout=5)
    msg = str(e.value)
    assert url in msg and 'after 2 attempt(s)' in msg
    assert 'offline' in msg and str(cache) in msg


def test_http_404_not_retried(server, cache):
    with pytest.raises(DownloadError, match='HTTP 404'):
        download_checkpoint(server.url('/zoo/missing-0123abcd.pth'))
    assert len(server.requests) == 1


def test_resume_partial_file_with_range(server, cache):
    data, _ = _ckpt_bytes()
    path = _named(data)
    server.files[path] = data
    half = len(data) // 2
    local = _keyed(server, path, cache)
    local.parent.mkdir(parents=True)
    partial = local.parent / (local.name + '.partial')
    partial.write_bytes(data[:half])
    local = download_checkpoint(server.url(path))
    assert server.requests == [(path, f'bytes={half}-')]
    assert Path(local).read_bytes() == data
    assert not partial.exists()


def test_dropped_connection_is_resumed(server, cache):
    data, model = _ckpt_bytes()
    path = _named(data)
    server.files[path] = data
    server.drop_after[path] = 1000
    with pytest.warns(UserWarning, match='resuming at byte 1000'):
        ckpt = load_from_http(server.url(path))
    assert [r[1] for r in server.requests] == [None, 'bytes=1000-']
    assert torch.equal(ckpt['state_dict']['weight'], model.weight)


def test_unverifiable_name_warns(server, cache, monkeypatch):
    data, _ = _ckpt_bytes()
    server.files['/hf/densecl_r50.pth'] = data
    with pytest.warns(UserWarning, match='cannot be verified'):
        download_checkpoint(server.url('/hf/densecl_r50.pth'))
    monkeypatch.setenv('MMSEG_CONTRAST_REQUIRE_HASH', '1')
    with pytest.raises(DownloadError, match='cannot be verified'):
        download_checkpoint(server.url('/hf/densecl_r50.pth'))


def test_downloaded_pickle_is_not_trusted(server, cache):
    # a checkpoint smuggling an arbitrary callable is refused by the
    # allowlist loader even though its checksum is right
    data, _ = _ckpt_bytes(extra={'evil': os.getcwd})
    path = _named(data)
    server.files[path] = data
    with pytest.raises(UnsafeCheckpointError, match='allowlist'):
        load_from_http(server.url(path))


def test_mmengine_entry_points_use_verified_loader(server, cache):
    """``init_cfg=Pretrained(URL)`` and ``load_checkpoint(model, URL)``."""
    from mmengine.runner.checkpoint import load_checkpoint
    from mmseg.registry import MODELS
    data, _ = _ckpt_bytes()
    # a real mmseg module saved under the 'backbone.' prefix
    cfg = dict(type='MobileNetV2', widen_factor=0.25, out_indices=(1, ))
    torch.manual_seed(1)
    src = MODELS.build(cfg)
    buf = io.BytesIO()
    torch.save({'state_dict': {f'backbone.{k}': v
                               for k, v in src.state_dict().items()}}, buf)
    data = buf.getvalue()
    path = _named(data, 'mnv2')
    server.files[path] = data
    dst = MODELS.build(
        dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=server.url(path),
                                prefix='backbone.')))
    dst.init_weights()
    w = 'conv1.conv.weight'
    assert torch.equal(dst.state_dict()[w], src.state_dict()[w])
    # bad bytes under the same name through mmengine's load_checkpoint
    bad_path = _named(data, 'mnv2_bad')
    server.files[bad_path] = data[:-10]
    with pytest.raises(ChecksumError):
        load_checkpoint(nn.Module(), server.url(bad_path))
    assert _files(cache) == [osp.basename(path)]


def _dist_worker(rank, world_size, port, url, model_dir, result_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      LOCAL_RANK=str(rank))
    import torch.distributed as dist
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        import mmseg_contrast  # noqa: F401
        from mmseg_contrast.checkpoint.download import load_from_http as load
        ckpt = load(url, model_dir=model_dir)
        torch.save(ckpt['state_dict'], osp.join(result_dir, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()


def test_rank0_downloads_first_under_ddp(server, tmp_path):
    import socket

    import torch.multiprocessing as mp
    data, model = _ckpt_bytes()
    path = _named(data)
    server.files[path] = data
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_dist_worker, nprocs=2,
             args=(2, port, server.url(path), str(tmp_path / 'c'),
                   str(tmp_path)))
    assert len(server.requests) == 1  # only rank 0 hit the server
    for r in range(2):
        sd = torch.load(tmp_path / f'{r}.pt')
        assert torch.equal(sd['weight'], model.weight)


def test_open_mmlab_scheme_goes_through_verified_loader(server, cache,
                                                        monkeypatch):
    import mmengine.runner.checkpoint as ckpt_mod
    from mmengine.runner.checkpoint import CheckpointLoader
    data, model = _ckpt_bytes()
    path = _named(data, 'resnet_toy')
    server.files[path] = data
    server.files['/zoo/resnet_bad-0123abcd.pth'] = data
    monkeypatch.setattr(
        ckpt_mod, 'get_external_models', lambda: {
            'toy': server.url(path),
            'bad': server.url('/zoo/resnet_bad-0123abcd.pth')
        })
    ckpt = CheckpointLoader.load_checkpoint('open-mmlab://toy')
    assert torch.equal(ckpt['state_dict']['weight'], model.weight)
    with pytest.raises(ChecksumError):
        CheckpointLoader.load_checkpoint('open-mmlab://bad')


def test_stale_partial_from_older_file_is_redownloaded(server, cache):
    data, _ = _ckpt_bytes()
    path = _named(data)
    server.files[path] = data
    local = _keyed(server, path, cache)
    local.parent.mkdir(parents=True)
    partial = local.parent / (local.name + '.partial')
    partial.write_bytes(b'x' * 500)  # not a prefix of the current file
    with pytest.warns(UserWarning, match='again from the start'):
        local = download_checkpoint(server.url(path))
    assert [r[1] for r in server.requests] == ['bytes=500-', None]
    assert Path(local).read_bytes() == data


def test_complete_partial_is_used_without_request(server, cache):
    data, _ = _ckpt_bytes()
    path = _named(data)
    local = _keyed(server, path, cache)
    local.parent.mkdir(parents=True)
    (local.parent / (local.name + '.partial')).write_bytes(data)
    local = download_checkpoint(server.url(path))
    assert server.requests == [] and Path(local).read_bytes() == data


# ------------------------------------------- not a checkpoint file at all
LISTING = (b'<!DOCTYPE html>\n<html><head><title>Index of /zoo/</title></head>'
           b'<body><a href="tiny-0123abcd.pth">tiny-0123abcd.pth</a></body>'
           b'</html>\n')


def test_folder_url_is_refused_before_downloading(server, cache):
    """A URL ending in '/' names a folder: the server answers with its HTML
    listing (before: the listing was saved as '<key>/.partial' and
    os.replace raised NotADirectoryError)."""
    server.files['/zoo/'] = LISTING
    with pytest.raises(DownloadError) as exc:
        load_from_http(server.url('/zoo/'))
    msg = str(exc.value)
    assert server.url('/zoo/') in msg and 'HTML page' in msg
    assert 'folder' in msg and '.pth file itself' in msg
    assert server.requests == []
    assert not cache.exists() or _files(cache) == []


def test_html_page_is_not_cached(server, cache):
    """A login / error page served with HTTP 200 under a .pth URL."""
    server.files['/zoo/model.pth'] = LISTING
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # unverifiable name
        with pytest.raises(DownloadError) as exc:
            load_from_http(server.url('/zoo/model.pth'))
    msg = str(exc.value)
    assert 'is not a checkpoint file' in msg and 'an HTML page' in msg
    assert 'nothing is kept in the cache' in msg
    assert not cache.exists() or list(cache.rglob('*')) == []


def test_test_tool_with_a_folder_url(server, cache, monkeypatch, tmp_path,
                                     voc_mini_root):
    server.files['/zoo/'] = LISTING
    monkeypatch.setattr(sys, 'argv', [
        'test.py', TINY_CFG, server.url('/zoo/'), '--work-dir',
        str(tmp_path / 'w'), '--cfg-options',
        *data_options(voc_mini_root, 'folder_url')])
    with pytest.raises(DownloadError, match='HTML page'):
        load_tool('test.py').main()
    assert not cache.exists() or _files(cache) == []
