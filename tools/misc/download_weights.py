"""Download (and verify) model-zoo weights by name, like ``mim download``.

    python tools/misc/download_weights.py --list
    python tools/misc/download_weights.py NAME [NAME ...] [--dest DIR]

Resolves ``Weights`` of each model in ``model-index.yml``, downloads it into
the torch hub cache (or ``--dest``) with the checksum in the file name
verified and partial downloads resumed (see
``mmseg_contrast/checkpoint/download.py``), and prints the local path and the
config to use it with. An already cached file is verified and reused
without network access. Entries ``Converted From`` another code base (the
ContrastiveSeg authors' checkpoints) are converted to mmseg keys, and the
path printed is the converted file.
"""
import argparse
import os.path as osp

import mmseg_contrast  # noqa: F401


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Download model-zoo weights')
    p.add_argument('names', nargs='*', help='model names (metafile Name)')
    p.add_argument('--list', action='store_true', help='list the models')
    p.add_argument('--dest', help='folder (default: torch hub cache)')
    p.add_argument('--model-index', help='model-index.yml to read')
    p.add_argument('--retries', type=int, default=3)
    return p.parse_args(argv)


def main(argv=None):
    from mmseg_contrast.checkpoint.download import download_checkpoint
    from mmseg_contrast.tooling.model_zoo import find_model, load_model_index
    args = parse_args(argv)
    if args.list or not args.names:
        for m in load_model_index(args.model_index):
            print(f'{m["Name"]}\t{m.get("Config", "")}\t'
                  f'{m.get("Weights", "(no weights)")}')
        return []
    paths = []
    for name in args.names:
        m = find_model(name, args.model_index)
        if not m.get('Weights'):
            raise SystemExit(f'{name} has no Weights in the model index')
        path = download_checkpoint(m['Weights'], model_dir=args.dest,
                                   retries=args.retries)
        if m.get('Converted From'):  # e.g. the ContrastiveSeg authors' files
            from mmseg_contrast.checkpoint.openseg_cache import (
                converted_cache_path,
                load_maybe_converted,
            )
            load_maybe_converted(path, map_location='cpu')
            if osp.isfile(converted_cache_path(path)):
                path = converted_cache_path(path)
        print(f'{name}: {path} (config: {m.get("Config")})')
        paths.append(path)
    return paths


if __name__ == '__main__':
    main()
