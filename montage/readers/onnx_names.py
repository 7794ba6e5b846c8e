"""Names for an ONNX graph's nodes: the module paths of the PyTorch model it was exported from.

``torch.onnx.export`` scopes each node by the modules that ran it (``/model.2/cv2/act/Mul``). A
module's path names what a forward hook on that module would see: the output of the last node
that runs inside it (a SiLU's ``Mul``, not its ``Sigmoid``; a C2f block's last activation, not
its ``Split``). The other nodes of a scope are named ``path/node`` after the node's own last part
(``model.0.act/Sigmoid``, ``model.2/Split``), and the modules around a node that ends them are
its aliases (``model.2`` and ``model.2.cv2`` for ``model.2.cv2.act``). A Conv or ConvTranspose
whose weight keeps its module's name (``layer1.0.conv1.weight``) is named after it. Nodes
without a scope (other exporters, graphs built by hand) keep their own names.

Reads the graph's nodes as they are: imports nothing.
"""

from __future__ import annotations

import re

_PATH = re.compile(r"[A-Za-z_][\w]*(\.[\w]+)*")


def scoped(name):
    """PyTorch's scoped node name ``/layer1/layer1.0/conv1/Conv`` as the module path ``layer1.0.conv1``."""
    path = []
    for part in [p for p in name.split("/") if p][:-1]:
        part = part.split(".")
        # a scope repeats the end of its parent's path: layer1 then layer1.0, downsample then downsample.0
        k = next((k for k in range(min(len(path), len(part)), 0, -1) if path[-k:] == part[:k]), 0)
        path = path[:len(path) - k] + part
    return ".".join(path)


def _weight_path(node, consts):
    if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
        w = node.input[1]
        if w in consts and w.endswith(".weight") and _PATH.fullmatch(w[:-7]):
            return w[:-7]
    return ""


def _last(nodes, scopes, consts):
    """{module path: index of the last node run inside it}, for every scope and the modules around it."""
    last = {}
    for i, (node, scope) in enumerate(zip(nodes, scopes)):
        if not scope or (node.output and node.output[0] in consts):     # a constant is no module's output
            continue
        parts = scope.split(".")
        for k in range(1, len(parts) + 1):
            last[".".join(parts[:k])] = i
    return last


def node_names(nodes, consts):
    """(a unique name per node, {node index: [module paths that name its output too]}).

    See the module's docstring for the rules.
    """
    scopes = [scoped(n.name) if n.name.startswith("/") else "" for n in nodes]
    last = _last(nodes, scopes, consts)
    convs = {i: w for i, n in enumerate(nodes) if (w := _weight_path(n, consts))}
    taken = set(convs.values())
    names, seen = [], {}
    for i, node in enumerate(nodes):
        name, scope = convs.get(i, ""), scopes[i]
        if not name and scope:
            own = last.get(scope) == i and scope not in taken
            name = scope if own else f"{scope}/{node.name.rsplit('/', 1)[-1]}"
        name = name or node.name or (node.output[0] if node.output else "") or f"{node.op_type}_{i}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    used, aliases = set(names), {}
    for path, i in sorted(last.items(), key=lambda kv: -kv[0].count(".")):     # the deepest first
        if path not in used:
            aliases.setdefault(i, []).append(path)
            used.add(path)
    return names, aliases
