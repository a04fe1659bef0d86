"""Read the OpenMMLab model index (``model-index.yml`` + metafiles).

``model-index.yml`` lists ``Import: [configs/<algo>/metafile.yaml, ...]``;
each metafile has ``Collections`` and ``Models`` (``Name``, ``In
Collection``, ``Config``, ``Metadata``, ``Results``, ``Weights``). This is
the layout ``mim`` and mmengine's ``::`` resolver read.
"""
import os.path as osp
from typing import Dict, List, Optional

from ..checkpoint.naming import is_hashed_weights_url

__all__ = ['is_hashed_weights_url', 'load_model_index', 'find_model']

def _repo_root():
    here = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(here, '.mim'), osp.dirname(here)):
        if osp.isfile(osp.join(root, 'model-index.yml')):
            return root
    raise FileNotFoundError('model-index.yml not found next to the package')


def load_model_index(index_file: Optional[str] = None) -> List[Dict]:
    """All model entries; each gets ``_metafile`` and the resolved
    ``_collection`` dict. Paths are relative to the index's folder."""
    import yaml
    index_file = index_file or osp.join(_repo_root(), 'model-index.yml')
    root = osp.dirname(osp.abspath(index_file))
    with open(index_file) as f:
        index = yaml.safe_load(f)
    if not isinstance(index, dict) or not isinstance(index.get('Import'),
                                                     list):
        raise ValueError(f'{index_file}: expected a mapping with an '
                         f'"Import" list of metafiles')
    models = []
    for rel in index['Import']:
        path = osp.join(root, rel)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{index_file} imports {rel}, which '
                                    f'does not exist')
        with open(path) as f:
            meta = yaml.safe_load(f) or {}
        colls = {c['Name']: c for c in meta.get('Collections', [])}
        for m in meta.get('Models', []):
            m = dict(m, _metafile=rel, _root=root)
            m['_collection'] = colls.get(m.get('In Collection'))
            models.append(m)
    return models


def find_model(name: str, index_file: Optional[str] = None) -> Dict:
    models = load_model_index(index_file)
    for m in models:
        if m.get('Name') == name:
            return m
    names = ', '.join(sorted(m.get('Name', '?') for m in models))
    raise KeyError(f'No model named {name!r} in the model index; known: '
                   f'{names}')
