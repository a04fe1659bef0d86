"""Hostile pickles and helpers for the reliability tests.

Each payload's ``__reduce__`` would create ``marker`` when unpickled without
restriction: ``os.system('touch ...')``, ``exec(...)`` or ``open(..., 'w')``.
"""
import io
import json
import os
import os.path as osp
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = osp.join(REPO, 'tests', 'data', 'configs', 'tiny_fcn_voc_mini.py')


class SystemPayload:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class ExecPayload(SystemPayload):

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()", ))


class OpenPayload(SystemPayload):

    def __reduce__(self):
        return (open, (self.marker, 'w'))


PAYLOADS = {'system': SystemPayload, 'exec': ExecPayload, 'open': OpenPayload}


def save_hostile(path, marker, kind='system', legacy=False, state_dict=None):
    """A checkpoint that looks ordinary but carries a payload in ``meta``."""
    ckpt = {
        'meta': {'iter': 4, 'note': PAYLOADS[kind](marker)},
        'state_dict': state_dict or {'decode_head.conv_seg.bias':
                                     torch.zeros(21)},
    }
    torch.save(ckpt, str(path), _use_new_zipfile_serialization=not legacy)
    return str(path)


def data_options(root, name):
    """``--cfg-options`` for the tiny config on the VOC mini set, with a
    unique experiment name (several runners in one process)."""
    opts = [f'{k}.dataset.data_root={root}'
            for k in ('train_dataloader', 'val_dataloader',
                      'test_dataloader')]
    return opts + [f'experiment_name={name}', 'log_level=ERROR']


# ------------------------------------------------ resource-bound hostiles
class Reduce:
    """Pickles as ``fn(*args)`` (a code-free, allowlisted call)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def save_meta(path, value):
    """An ordinary-looking checkpoint with ``value`` in ``meta``."""
    torch.save({'meta': {'iter': 4, 'note': value},
                'state_dict': {'decode_head.conv_seg.bias': torch.zeros(21)}},
               str(path))
    return str(path)


def save_deflate_bomb(path, inflated=256 << 20):
    """A zip checkpoint whose deflated ``data.pkl`` (a pickled string of
    ``inflated`` bytes) takes a few hundred KB on disk."""
    buf = io.BytesIO()
    torch.save({}, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(str(path), 'w') as out:
        for name in src.namelist():
            if not name.endswith('/data.pkl'):
                out.writestr(name, src.read(name))
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with out.open(info, 'w', force_zip64=True) as dst:
                dst.write(b'\x80\x02}X\x04\x00\x00\x00metaX'
                          + struct.pack('<I', inflated))
                chunk = b'a' * (1 << 20)
                for _ in range(inflated >> 20):
                    dst.write(chunk)
                dst.write(b'a' * (inflated % (1 << 20)) + b's.')
    return str(path)


def save_legacy_tar(path, obj):
    """``obj`` in the tar checkpoint format of torch < 0.4 (records
    ``sys_info``, ``pickle``, ``tensors``, ``storages``; float32 / int64
    tensors), as ``torch.load`` still reads it with full unpickling."""
    tensors = {}

    class Pickler(pickle.Pickler):

        def persistent_id(self, o):
            if isinstance(o, torch.Tensor):
                tensors[len(tensors)] = o.detach().contiguous()
                return str(len(tensors) - 1)
            return None

    main = io.BytesIO()
    Pickler(main, protocol=2).dump(obj)
    storages, tensor_meta = io.BytesIO(), io.BytesIO()
    pickle.dump(len(tensors), storages, protocol=2)
    pickle.dump(len(tensors), tensor_meta, protocol=2)
    for key, t in tensors.items():
        stype = {torch.float32: torch.FloatStorage,
                 torch.int64: torch.LongStorage}[t.dtype]
        pickle.dump((1000 + key, 'cpu', stype), storages, protocol=2)
        storages.write(struct.pack('<q', t.numel()) + t.numpy().tobytes())
        pickle.dump((key, 1000 + key, type(t)), tensor_meta, protocol=2)
        tensor_meta.write(struct.pack('<i', t.dim()) + bytes(4))
        tensor_meta.write(struct.pack(f'<{2 * t.dim() + 1}q', *t.shape,
                                      *t.stride(), 0))
    pickle.dump([], storages, protocol=2)
    sys_info = io.BytesIO()
    pickle.dump(dict(protocol_version=1001, little_endian=True,
                     type_sizes=dict(short=2, int=4, long=4)), sys_info,
                protocol=2)
    with tarfile.open(str(path), 'w:', format=tarfile.PAX_FORMAT) as tar:
        for name, member in (('sys_info', sys_info), ('pickle', main),
                             ('storages', storages),
                             ('tensors', tensor_meta)):
            data = member.getvalue()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


#: run in a fresh interpreter: load argv[1] with the safe loader, print
#: one JSON line (outcome, message, peak RSS growth in MiB). The peak is
#: reset to the current RSS first (/proc/self/clear_refs), so the imports'
#: own peak cannot hide the load's; ru_maxrss where that is unavailable.
_MEASURE = r"""
import json, resource, sys
import mmseg_contrast
from mmseg_contrast.checkpoint import load_checkpoint_file
def status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024
try:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    base, peak = status('VmRSS'), lambda: status('VmHWM')
except OSError:
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base = peak()
try:
    load_checkpoint_file(sys.argv[1])
    out = dict(outcome='loaded', message='')
except BaseException as e:
    out = dict(outcome=type(e).__name__, message=str(e))
out['growth_mib'] = peak() - base
print(json.dumps(out))
"""


def load_in_subprocess(path, env=None, timeout=300):
    """Load ``path`` with the safe loader in a fresh interpreter:
    ``{'outcome': 'loaded' | exception name, 'message', 'growth_mib'}``
    (peak RSS during the load minus the RSS before it)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    res = subprocess.run([sys.executable, '-c', _MEASURE, str(path)],
                         capture_output=True, text=True, env=full_env,
                         timeout=timeout)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith('{')]
    assert lines, res.stderr[-3000:]
    return json.loads(lines[-1])


def save_raw_pickle(path, data_pkl):
    """A zip checkpoint (as torch.save writes it) whose ``data.pkl`` is the
    given bytes."""
    buf = io.BytesIO()
    torch.save({}, buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(str(path), 'w') as out:
        for name in src.namelist():
            out.writestr(name, data_pkl if name.endswith('/data.pkl')
                         else src.read(name))
    return str(path)
