"""Damaged checkpoint files give one clear error naming the file; the
allowlist's former false positives load."""
import hashlib
import io
import os
import os.path as osp
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmseg_contrast.checkpoint.integrity import (
    CorruptCheckpointError,
    atomic_torch_save,
    hash_prefix_of,
    verify_checkpoint_file,
)
from mmseg_contrast.checkpoint.safety import load_checkpoint_file


def _weights():
    g = torch.Generator().manual_seed(0)
    return {'state_dict': {'w': torch.randn(300, 100, generator=g),
                           'b': torch.zeros(7)}}


def _record(path, suffix):
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    with open(path, 'rb') as f:
        f.seek(info.header_offset + 26)
        nlen, elen = np.frombuffer(f.read(4), '<u2')
    return info, info.header_offset + 30 + int(nlen) + int(elen)


def _tensor_record(path, tensor):
    """(ZipInfo, data offset) of the zip record holding ``tensor``."""
    with zipfile.ZipFile(path) as z:
        size = tensor.numel() * tensor.element_size()
        name = next(i.filename for i in z.infolist()
                    if '/data/' in i.filename and i.file_size == size)
    return _record(path, name)


@pytest.fixture
def good(tmp_path):
    path = str(tmp_path / 'good.pth')
    ckpt = _weights()
    torch.save(ckpt, path)
    return path, ckpt


def test_random_bytes_inside_a_tensor_fail_the_crc(good, tmp_path):
    path, ckpt = good
    _, start = _tensor_record(path, ckpt['state_dict']['w'])
    data = bytearray(Path(path).read_bytes())
    data[start + 1000:start + 1512] = np.random.default_rng(0).bytes(512)
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(bytes(data))
    # torch itself loads it silently with garbage weights
    assert not torch.equal(torch.load(str(bad))['state_dict']['w'],
                           ckpt['state_dict']['w'])
    with pytest.raises(CorruptCheckpointError) as exc:
        load_checkpoint_file(str(bad))
    msg = str(exc.value)
    assert str(bad) in msg and 'CRC-32' in msg and 'data/' in msg
    # the untouched file passes
    torch.testing.assert_close(load_checkpoint_file(path)['state_dict']['w'],
                               ckpt['state_dict']['w'])


@pytest.mark.parametrize('content,phrase', [
    (b'', r'is empty \(0 bytes\)'),
    (b'version https://git-lfs.github.com/spec/v1\noid sha256:ab\n',
     'looks like text'),
    (b'<html><body>404 Not Found</body></html>', 'not a PyTorch checkpoint'),
    (bytes(range(256)) * 4, 'not a PyTorch checkpoint'),
])
def test_empty_and_garbage_files(tmp_path, content, phrase):
    path = tmp_path / 'model.pth'
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=phrase) as exc:
        load_checkpoint_file(str(path))
    assert str(path) in str(exc.value)


@pytest.mark.parametrize('keep', [0.5, 0.999])
def test_truncated_zip(good, tmp_path, keep):
    path, _ = good
    data = Path(path).read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CorruptCheckpointError, match='truncated') as exc:
        load_checkpoint_file(str(cut))
    assert str(cut) in str(exc.value)


def test_truncated_record_with_intact_directory(good, tmp_path):
    """A record that runs past the end of the file (its directory entry
    intact) is reported as truncated."""
    path, ckpt = good
    info, start = _tensor_record(path, ckpt['state_dict']['w'])
    data = Path(path).read_bytes()
    # keep the central directory but drop most of the tensor record
    with zipfile.ZipFile(path) as z:
        cd_start = min(i.header_offset for i in z.infolist()
                       if i.header_offset > info.header_offset)
    shifted = data[:start + 10] + data[cd_start:]
    out = tmp_path / 'hole.pth'
    out.write_bytes(shifted)
    with pytest.raises(CorruptCheckpointError) as exc:
        load_checkpoint_file(str(out))
    assert str(out) in str(exc.value)


def test_legacy_format_loads_and_truncation_is_clear(tmp_path):
    ckpt = _weights()
    path = tmp_path / 'legacy.pth'
    torch.save(ckpt, str(path), _use_new_zipfile_serialization=False)
    assert verify_checkpoint_file(str(path)) == 'legacy'
    torch.testing.assert_close(
        load_checkpoint_file(str(path))['state_dict']['w'],
        ckpt['state_dict']['w'])
    data = path.read_bytes()
    cut = tmp_path / 'legacy_cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='cannot be read') as e:
        load_checkpoint_file(str(cut))
    assert str(cut) in str(e.value)


def test_file_saved_without_crcs_loads(tmp_path):
    path = str(tmp_path / 'nocrc.pth')
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(_weights(), path)
    finally:
        torch.serialization.set_crc32_options(True)
    with zipfile.ZipFile(path) as z:
        assert all(i.CRC == 0 for i in z.infolist())
    assert load_checkpoint_file(path)['state_dict']['b'].shape == (7, )


def test_compressed_records_are_crc_checked(good, tmp_path):
    """torch never compresses, but reads deflated archives; zipfile checks
    their CRC."""
    path, ckpt = good
    defl = str(tmp_path / 'defl.pth')
    with zipfile.ZipFile(path) as zin, \
            zipfile.ZipFile(defl, 'w', zipfile.ZIP_DEFLATED) as zout:
        for i in zin.infolist():
            zout.writestr(i.filename, zin.read(i.filename))
    torch.testing.assert_close(load_checkpoint_file(defl)['state_dict']['w'],
                               ckpt['state_dict']['w'])
    info, start = _tensor_record(defl, ckpt['state_dict']['w'])
    data = bytearray(Path(defl).read_bytes())
    data[start + 100:start + 150] = bytes(50)
    bad = tmp_path / 'defl_bad.pth'
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match='corrupted'):
        load_checkpoint_file(str(bad))


def test_hash_in_name_is_verified(good, tmp_path):
    path, ckpt = good
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    while digest[:8].isdigit():  # would read as a date; save again
        torch.save(ckpt, path)  # (a new random serialization id)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    named = tmp_path / f'fcn_r50-d8_20210302-{digest[:8]}.pth'
    named.write_bytes(Path(path).read_bytes())
    assert hash_prefix_of(str(named)) == digest[:8]
    assert load_checkpoint_file(str(named))['state_dict']['b'].shape == (7, )
    wrong = tmp_path / f'fcn_r50-d8_20210302-{"0" * 8}.pth'
    wrong.write_bytes(Path(path).read_bytes())
    with pytest.raises(CorruptCheckpointError, match='checksum') as exc:
        load_checkpoint_file(str(wrong))
    assert str(wrong) in str(exc.value) and '00000000' in str(exc.value)
    # callers that just verified the hash (the URL loader) may skip it
    assert load_checkpoint_file(str(wrong), check_hash=False)


def test_date_suffix_is_not_a_hash(good, tmp_path):
    """mmseg-style ``..._20210302.pth`` / ``...-20210302.pth`` names carry a
    date, not a sha256 prefix: they load without a checksum error."""
    path, _ = good
    for name in ('deeplabv3_r50-20210302.pth', 'iter_1000.pth'):
        target = tmp_path / name
        target.write_bytes(Path(path).read_bytes())
        assert hash_prefix_of(str(target)) is None, name
        assert load_checkpoint_file(str(target))['state_dict']


def test_false_positives_load(tmp_path):
    """An empty numpy array and an empty HistoryBuffer pickle ``bytes()``
    (protocol 2); they used to be refused as ``GLOBAL builtins.bytes``."""
    path = str(tmp_path / 'meta.pth')
    torch.save({'meta': {'empty': np.array([]), 'hb': HistoryBuffer(),
                         'strs': np.array(['a', 'bc'])},
                'state_dict': {}}, path)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['empty'].shape == (0, )
    assert len(ckpt['meta']['hb']._log_history) == 0
    assert ckpt['meta']['strs'].tolist() == ['a', 'bc']


def test_in_memory_buffers(good):
    path, ckpt = good
    buf = io.BytesIO(Path(path).read_bytes())
    out = load_checkpoint_file(buf, name='wheel.whl:weights.pt')
    torch.testing.assert_close(out['state_dict']['w'], ckpt['state_dict']['w'])
    with pytest.raises(CorruptCheckpointError, match='wheel.whl:weights.pt'):
        load_checkpoint_file(io.BytesIO(b'junk' * 10),
                             name='wheel.whl:weights.pt')


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='can not be found'):
        load_checkpoint_file(str(tmp_path / 'absent.pth'))


def test_atomic_save_leaves_nothing_half_written(tmp_path):
    dst = tmp_path / 'out' / 'x.pth'
    atomic_torch_save({'a': torch.ones(2)}, str(dst))
    before = dst.read_bytes()

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError('cannot pickle')

    with pytest.raises(RuntimeError, match='cannot pickle'):
        atomic_torch_save({'a': Unpicklable()}, str(dst))
    assert dst.read_bytes() == before  # the previous file is intact
    assert os.listdir(osp.dirname(dst)) == ['x.pth']  # no temp file left


def test_valid_archive_with_a_broken_pickle(good, tmp_path):
    """CRCs fine but ``data.pkl`` is no pickle torch can read: a clear
    'cannot be read' error, not the 'unsafe' refusal."""
    path, _ = good
    out = str(tmp_path / 'badpkl.pth')
    with zipfile.ZipFile(path) as zin, \
            zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as zout:
        for i in zin.infolist():
            data = zin.read(i.filename)
            if i.filename.endswith('data.pkl'):
                data = b'\x80\x02' + b'\xff' * 16
            zout.writestr(i.filename, data)
    with pytest.raises(CorruptCheckpointError, match='cannot be read') as e:
        load_checkpoint_file(out)
    assert out in str(e.value) and 'Refusing' not in str(e.value)
