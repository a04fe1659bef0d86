"""The package's import graph, read from the source (every ``import``
statement at any depth, including those inside functions)."""
import ast
import os.path as osp
from collections import defaultdict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGE = 'mmseg_contrast'


def module_files(root=REPO):
    """``{module name: file}`` of every module of the package."""
    import glob
    out = {}
    for f in glob.glob(osp.join(root, PACKAGE, '**', '*.py'), recursive=True):
        rel = osp.relpath(f, root)[:-3].replace(osp.sep, '.')
        if '.mim' in rel.split('.'):
            continue
        out[rel.removesuffix('.__init__')] = f
    return out


def _resolve(module, level, target, is_pkg):
    if level == 0:
        return target
    parts = module.split('.')
    base = parts if is_pkg else parts[:-1]
    base = base[:len(base) - (level - 1)]
    return '.'.join(base + ([target] if target else []))


def imports_of(module, path, known):
    """``[(imported module, line, in_function)]`` of one module."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_pkg = path.endswith('__init__.py')
    out = []

    def add(name, node, in_fn):
        # the deepest known module that ``name`` is, or lies in
        while name and name not in known:
            name = name.rpartition('.')[0]
        if name:
            out.append((name, node.lineno, in_fn))

    def visit(node, in_fn):
        for child in ast.iter_child_nodes(node):
            fn = in_fn or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split('.')[0] == PACKAGE:
                        add(a.name, child, fn)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, child.level, child.module, is_pkg)
                if base.split('.')[0] != PACKAGE:
                    continue
                for a in child.names:
                    sub = f'{base}.{a.name}'
                    add(sub if sub in known else base, child, fn)
            visit(child, fn)

    visit(tree, False)
    return out


def import_graph(root=REPO):
    """``{module: {imported module: [(line, in_function), ...]}}``."""
    files = module_files(root)
    graph = {}
    for mod, path in files.items():
        edges = defaultdict(list)
        for target, line, in_fn in imports_of(mod, path, files):
            if target != mod:
                edges[target].append((line, in_fn))
        graph[mod] = dict(edges)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out
