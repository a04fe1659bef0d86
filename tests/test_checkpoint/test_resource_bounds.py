"""Code-free checkpoints that would exhaust memory are refused before
anything is built, with one error naming the file and what was refused;
legitimate checkpoints (long training logs included) still load
(:mod:`mmseg_contrast.checkpoint.bounds`)."""
import _codecs
import collections
import io
import os.path as osp
import pickletools
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer

from mmseg_contrast.checkpoint import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    load_checkpoint_file,
)
from mmseg_contrast.checkpoint.bounds import (
    OBJECT_LIMIT_ENV,
    TRUSTED_ENV,
    check_pickle_bounds,
)
from mmseg_contrast.checkpoint.integrity import inspect_checkpoint

from helpers.reliab_helpers import (
    TINY_CFG,
    Reduce,
    data_options,
    load_in_subprocess,
    save_deflate_bomb,
    save_meta,
    save_raw_pickle,
)

try:  # numpy < 2
    from numpy.core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy >= 2
    from numpy._core.multiarray import _reconstruct

MAX_GROWTH_MIB = 100


def _hostile(kind, path):
    if kind == 'set_range':  # +350 MB before: range was allowlisted
        return save_meta(path, Reduce(set, range(5 * 10**6)))
    if kind == 'bytearray':  # torch's own allowlist
        return save_meta(path, Reduce(bytearray, 512 << 20))
    if kind == 'deflate':  # a 256 MiB data.pkl in a few hundred KB
        return save_deflate_bomb(path, 256 << 20)
    if kind == 'numpy_8gib':  # an uninitialised 8 GiB array
        return save_meta(path, Reduce(_reconstruct, np.ndarray, (2**33, ),
                                      b'b'))
    if kind == 'numpy_64tib':  # a raw MemoryError before
        return save_meta(path, Reduce(_reconstruct, np.ndarray, (2**46, ),
                                      b'b'))
    raise ValueError(kind)


EXPECTED = {
    'set_range': 'GLOBAL range',
    'bytearray': 'bytearray of 536,870,912 bytes',
    'deflate': 'compressed zip records',
    'numpy_8gib': 'numpy array of shape (8589934592,)',
    'numpy_64tib': 'numpy array of shape (70368744177664,)',
}


@pytest.mark.parametrize('kind', sorted(EXPECTED))
def test_refused_with_bounded_memory(tmp_path, kind):
    """Each kind in a fresh interpreter: one UnsafeCheckpointError naming
    the file and what was refused, and at most 100 MiB of peak RSS growth
    (before: +350 MB, +512 MB, +0.8 GB, an 8 GiB array, a MemoryError)."""
    path = _hostile(kind, tmp_path / f'{kind}.pth')
    assert osp.getsize(path) < 1 << 20
    out = load_in_subprocess(path)
    assert out['outcome'] == 'UnsafeCheckpointError', out
    assert osp.basename(path) in out['message']
    assert EXPECTED[kind] in out['message'], out['message']
    assert out['growth_mib'] <= MAX_GROWTH_MIB, out


def test_memory_measure_is_not_blind(tmp_path):
    """Positive control: a trusted file that does build 256 MiB shows it."""
    path = _hostile('bytearray', tmp_path / 'big.pth')
    out = load_in_subprocess(path, env={TRUSTED_ENV: '1'})
    assert out['outcome'] == 'loaded' and out['growth_mib'] > 400, out


def test_set_over_range_is_bounded_when_range_is_allowlisted(tmp_path):
    """Should some other code allowlist ``range``, the walk still bounds
    what ``set()`` builds from it."""
    path = save_meta(tmp_path / 'set.pth', Reduce(set, range(10**9)))
    with torch.serialization.safe_globals([range]):
        with pytest.raises(UnsafeCheckpointError) as exc:
            load_checkpoint_file(path)
    assert 'set() of 1,000,000,000 items' in str(exc.value)


@pytest.mark.parametrize('value', [
    slice(1, 2), frozenset({1, 2}), range(3),
    collections.defaultdict(None, {'a': 1}), np.float32
], ids=['slice', 'frozenset', 'range', 'defaultdict', 'scalar_type'])
def test_dropped_globals_are_refused(tmp_path, value):
    """No mmengine / torch.save checkpoint pickles these (see
    test_training_checkpoint_globals); they are off the allowlist."""
    path = save_meta(tmp_path / 'dropped.pth', value)
    with pytest.raises(UnsafeCheckpointError, match='allowlist'):
        load_checkpoint_file(path)


INDIRECT = {
    # a call through torch's tensor-subclass rebuild
    'from_type': lambda: Reduce(torch._tensor._rebuild_from_type_v2,
                                bytearray, torch.Tensor, (256 << 20, ), {}),
    # torch's own allowlist: storages and tensors built from a size
    'storage': lambda: Reduce(torch.UntypedStorage, 256 << 20),
    'tensor': lambda: Reduce(torch.FloatTensor, 64 << 20),
}


@pytest.mark.parametrize('kind', sorted(INDIRECT))
def test_indirect_allocations_are_refused(tmp_path, kind):
    path = save_meta(tmp_path / f'{kind}.pth', INDIRECT[kind]())
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_checkpoint_file(path)
    assert f'{kind}.pth' in str(exc.value)


def test_in_memory_files_are_bounded_too(tmp_path):
    path = save_meta(tmp_path / 'buf.pth', Reduce(bytearray, 512 << 20))
    with open(path, 'rb') as f:
        buf = io.BytesIO(f.read())
    with pytest.raises(UnsafeCheckpointError, match='weights.pt'):
        load_checkpoint_file(buf, name='weights.pt')


def test_call_arguments_given_as_a_list(tmp_path):
    """torch's unpickler calls ``f(*args)`` for any iterable ``args``:
    ``bytearray(*[2**28])`` from a hand-written pickle."""
    pkl = (b'\x80\x02}X\x04\x00\x00\x00metac__builtin__\nbytearray\n'
           b']J\x00\x00\x00\x10aRs.')
    path = save_raw_pickle(tmp_path / 'listargs.pth', pkl)
    with pytest.raises(UnsafeCheckpointError, match='bytearray'):
        load_checkpoint_file(path)


def test_codec_chains_are_refused(tmp_path):
    """``_codecs.encode`` (torch's allowlist) through 'hex' doubles the data
    per step, a few bytes each."""
    value = b'ab'
    for _ in range(3):
        value = Reduce(_codecs.encode, value, 'hex')
    path = save_meta(tmp_path / 'hex.pth', value)
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_checkpoint_file(path)
    assert "'hex'" in str(exc.value) and 'hex.pth' in str(exc.value)


def test_configdict_of_shared_dicts_is_bounded(tmp_path):
    """ConfigDict copies nested dicts: 60 levels of a dict referenced twice
    would be 2**60 dicts (checked without loading)."""
    d = {}
    for _ in range(60):
        d = {'a': d, 'b': d}
    path = save_meta(tmp_path / 'dag.pth', Reduce(ConfigDict, d))
    with open(path, 'rb') as f:
        with pytest.raises(UnsafeCheckpointError, match='ConfigDict'):
            check_pickle_bounds(f, path, inspect_checkpoint(f, path))


def test_many_small_containers(tmp_path):
    """1.5 MB of empty dicts (1 byte each in a pickle) is 100 MB of
    objects."""
    pkl = b'\x80\x02]q\x00(' + b'}' * 1_500_000 + b'e.'
    path = save_raw_pickle(tmp_path / 'dicts.pth', pkl)
    with pytest.raises(UnsafeCheckpointError, match='many small objects'):
        load_checkpoint_file(path)


def test_legacy_storage_claims_are_checked(tmp_path):
    buf = io.BytesIO()
    torch.save({'w': torch.zeros(3)}, buf,
               _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    assert data.count(b'cpuq\x06K\x03N') == 1
    path = tmp_path / 'claims.pth'
    path.write_bytes(data.replace(b'cpuq\x06K\x03N',
                                  b'cpuq\x06J\x00\x00\x00\x40N'))
    with pytest.raises(CorruptCheckpointError) as exc:
        load_checkpoint_file(str(path))
    assert 'claim 4,294,967,296 bytes' in str(exc.value)
    assert 'claims.pth' in str(exc.value)


def test_limit_is_adjustable_and_trusted_files_skip_it(tmp_path,
                                                       monkeypatch):
    path = save_meta(tmp_path / 'buf.pth', Reduce(bytearray, 70 << 20))
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_checkpoint_file(path)
    assert OBJECT_LIMIT_ENV in str(exc.value) and TRUSTED_ENV in str(
        exc.value)
    monkeypatch.setenv(OBJECT_LIMIT_ENV, '128')
    assert len(load_checkpoint_file(path)['meta']['note']) == 70 << 20
    monkeypatch.setenv(OBJECT_LIMIT_ENV, '1')
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_file(path)
    monkeypatch.setenv(TRUSTED_ENV, '1')
    assert len(load_checkpoint_file(path)['meta']['note']) == 70 << 20
    monkeypatch.delenv(TRUSTED_ENV)
    monkeypatch.setenv(OBJECT_LIMIT_ENV, 'lots')
    with pytest.raises(ValueError, match=OBJECT_LIMIT_ENV):
        load_checkpoint_file(path)


def test_compressed_records_within_bounds_load(tmp_path):
    """A re-zipped checkpoint of ordinary size still loads (and the bomb
    loads when trusted)."""
    path = str(tmp_path / 'w.pth')
    w = torch.randn(64, 64)
    torch.save({'state_dict': {'w': w}}, path)
    defl = str(tmp_path / 'defl.pth')
    with zipfile.ZipFile(path) as zin, \
            zipfile.ZipFile(defl, 'w', zipfile.ZIP_DEFLATED) as zout:
        for i in zin.infolist():
            zout.writestr(i.filename, zin.read(i.filename))
    torch.testing.assert_close(load_checkpoint_file(defl)['state_dict']['w'],
                               w)
    bomb = save_deflate_bomb(tmp_path / 'bomb.pth', 80 << 20)
    with pytest.raises(UnsafeCheckpointError, match='compressed'):
        load_checkpoint_file(bomb)


def test_memory_error_is_one_clear_error(tmp_path, monkeypatch):
    path = save_meta(tmp_path / 'ok.pth', 1)

    def oom(*args, **kwargs):
        raise MemoryError('Unable to allocate 64.0 TiB')

    monkeypatch.setattr(torch, 'load', oom)
    with pytest.raises(UnsafeCheckpointError) as exc:
        load_checkpoint_file(path)
    assert 'ok.pth' in str(exc.value) and 'out of memory' in str(exc.value)


# ------------------------------------------------------- still loading
def test_long_training_logs_load(tmp_path):
    """160k iterations x 10 logged scalars (33 MB of history buffers) stay
    within 64 MiB + 4 bytes per byte of pickle."""
    scalars = {}
    rng = np.random.default_rng(0)
    for k in range(10):
        hb = HistoryBuffer()
        hb._log_history = rng.random(160_000)
        hb._count_history = np.ones(160_000)
        scalars[f'train/s{k}'] = hb
    path = str(tmp_path / 'long.pth')
    torch.save({'state_dict': {'w': torch.zeros(3)},
                'message_hub': {'log_scalars': scalars},
                'meta': {'cfg': 'x = 1\n' * 20000, 'seed': np.int64(3)}},
               path)
    ckpt = load_checkpoint_file(path)
    hb = ckpt['message_hub']['log_scalars']['train/s9']
    assert hb._log_history.shape == (160_000, ) and hb.mean(10) > 0


def test_training_checkpoint_globals(tmp_path, voc_mini_root):
    """A real mmengine checkpoint (AdamW state, two LR schedulers, message
    hub) loads, and pickles none of the globals dropped from the
    allowlist."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(TINY_CFG)
    cfg.merge_from_dict(dict(o.split('=', 1) for o in data_options(
        voc_mini_root, 'bounds_globals')))
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.optim_wrapper = dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=1),
        dict(type='PolyLR', power=0.9, by_epoch=False, begin=1, end=2)]
    Runner.from_cfg(cfg).train()
    path = str(tmp_path / 'iter_2.pth')
    ckpt = load_checkpoint_file(path)
    assert ckpt['optimizer']['state'] and len(ckpt['param_schedulers']) == 2
    assert 'train/loss' in ckpt['message_hub']['log_scalars']
    with zipfile.ZipFile(path) as z:
        pkl = z.read(next(n for n in z.namelist()
                          if n.endswith('/data.pkl')))
    names = {arg.replace(' ', '.').replace('numpy._core', 'numpy.core')
             for op, arg, _ in pickletools.genops(pkl)
             if op.name == 'GLOBAL'}
    assert names <= {
        '__builtin__.getattr', '_codecs.encode', 'collections.OrderedDict',
        'mmengine.logging.history_buffer.HistoryBuffer', 'numpy.dtype',
        'numpy.ndarray', 'numpy.core.multiarray._reconstruct',
        'numpy.core.multiarray.scalar', 'torch.FloatStorage',
        'torch.LongStorage', 'torch._utils._rebuild_tensor_v2'}, names
