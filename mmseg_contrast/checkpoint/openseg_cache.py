"""Load downloaded checkpoints, converting ContrastiveSeg / openseg ones.

Used by the ``http(s)://`` checkpoint loader
(:func:`mmseg_contrast.checkpoint.download.load_from_http`): a file in the
authors' layout (:func:`~mmseg_contrast.converters.openseg.
is_openseg_checkpoint`) is converted once, the conversion is written next to
the download and reused afterwards.
"""
import os.path as osp

from mmengine.logging import print_log

from ..converters import openseg as oc
from .safety import load_checkpoint_file
from .saving import atomic_torch_save

__all__ = ['converted_cache_path', 'load_maybe_converted']


def converted_cache_path(path: str) -> str:
    """Where the conversion of a downloaded openseg file is cached."""
    return osp.splitext(path)[0] + '.mmseg.pth'


def load_maybe_converted(path: str, map_location=None, check_hash=True):
    """Load a downloaded checkpoint; an openseg one is converted.

    The conversion is written once next to the download
    (:func:`converted_cache_path`) and reused while its converter version
    and source size match, so a second run neither re-reads the source nor
    converts again. Other checkpoints are returned as loaded. Everything is
    read with the safe loader.
    """
    conv = converted_cache_path(path)
    size = osp.getsize(path)
    if osp.isfile(conv):
        ckpt = load_checkpoint_file(conv, map_location=map_location)
        meta = ckpt.get('meta', {}).get('openseg', {}) \
            if isinstance(ckpt, dict) else {}
        if meta.get('converter_version') == oc.CONVERTER_VERSION and \
                meta.get('source_bytes') == size:
            print_log(f'openseg checkpoint: using the cached conversion '
                      f'{conv}', logger='current')
            return ckpt
    ckpt = load_checkpoint_file(path, map_location=map_location,
                                check_hash=check_hash)
    if not oc.is_openseg_checkpoint(ckpt):
        return ckpt
    out = oc.convert_openseg_checkpoint(ckpt)
    out['meta']['openseg'].update(source=osp.basename(path),
                                  source_bytes=size)
    atomic_torch_save(out, conv)
    print_log('openseg checkpoint converted for mmseg: ' +
              '; '.join(oc.summary(out['meta']['openseg'])) +
              f'; cached as {conv}', logger='current')
    return out
