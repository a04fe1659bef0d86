"""Extract the teacher or the student of a ``SemiSegmentor`` checkpoint into
a plain segmentor checkpoint.

A ``SemiSegmentor`` checkpoint already loads into the plain segmentor config
(the teacher is stored under the plain keys, the student under
``student.*``, which the plain model reports as unexpected keys). This tool
writes a clean file without the other branch and without the optimizer /
message-hub state, e.g. to publish the teacher or to evaluate the student::

    python tools/model_converters/semi2plain.py \\
        work_dirs/reco/iter_40000.pth reco_teacher.pth
    python tools/model_converters/semi2plain.py \\
        work_dirs/reco/iter_40000.pth reco_student.pth --branch student
"""
import argparse
from collections import OrderedDict

import mmseg_contrast  # noqa: F401  (applies the checkpoint allowlist)
from mmseg_contrast.checkpoint import atomic_torch_save, load_checkpoint_file


def semi_to_plain(state_dict: dict, branch: str = 'teacher') -> OrderedDict:
    """Keys of ``branch`` without prefix.

    Accepts the ``SemiSegmentor`` layout (teacher = plain keys, student =
    ``student.*``) and an explicit ``teacher.*`` / ``student.*`` layout.
    """
    if branch not in ('teacher', 'student'):
        raise ValueError(f"branch must be 'teacher' or 'student', got "
                         f'{branch!r}')
    keys = list(state_dict)
    if not any(k.startswith('student.') for k in keys):
        raise ValueError('not a SemiSegmentor checkpoint: no "student." keys')
    out = OrderedDict()
    explicit = any(k.startswith('teacher.') for k in keys)
    for k, v in state_dict.items():
        if branch == 'student':
            if k.startswith('student.'):
                out[k[len('student.'):]] = v
        elif explicit:
            if k.startswith('teacher.'):
                out[k[len('teacher.'):]] = v
        elif not k.startswith(('student.', 'data_preprocessor.')):
            out[k] = v
    if not out:
        raise ValueError(f'the checkpoint holds no {branch} weights')
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='SemiSegmentor checkpoint')
    parser.add_argument('dst', help='output plain checkpoint')
    parser.add_argument('--branch', default='teacher',
                        choices=['teacher', 'student'])
    args = parser.parse_args(argv)
    # through the safe loader: a hostile pickle is refused before it runs
    ckpt = load_checkpoint_file(args.src, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) \
        else ckpt
    if not isinstance(ckpt, dict) or not isinstance(state_dict, dict):
        held = state_dict if isinstance(ckpt, dict) else ckpt
        raise ValueError(
            f'{args.src} is not a checkpoint dict: it holds a '
            f'{type(held).__module__}.{type(held).__qualname__}'
            + (f' of shape {tuple(held.shape)}' if hasattr(held, 'shape')
               else '')
            + (" under 'state_dict'" if isinstance(ckpt, dict) else '')
            + '. semi2plain needs a SemiSegmentor checkpoint: a dict whose '
            "'state_dict' (or itself) maps parameter names to tensors, as "
            'mmengine saves it.')
    out = dict(state_dict=semi_to_plain(state_dict, args.branch))
    if 'meta' in ckpt:
        out['meta'] = dict(ckpt['meta'], semi_branch=args.branch)
    atomic_torch_save(out, args.dst)  # never a half-written dst
    print(f'{args.branch}: {len(out["state_dict"])} tensors -> {args.dst}')


if __name__ == '__main__':
    main()
