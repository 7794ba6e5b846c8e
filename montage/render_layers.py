"""The layers table (``montage layers``): the tutorial's summary of every drawable kernel, or
(``--maps``) every layer whose output is 2-D maps, by the names ``--layer`` takes."""

from __future__ import annotations

import numpy as np

from .console import counted
from .graph import is_map, kernels, op_name, output_rank, output_shape, skipped, walk
from .models import load_kernels, load_model
from .readers.applications import APPLICATIONS
from .result import Table


def _lines(rows, right=()):
    """Rows as aligned text under a rule; columns in ``right`` aligned right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def table_weights(model, weights):
    """The weights a table loads: as given; else, for a built-in model whose default weights
    download (every keras.applications name but vgg16, torchvision:NAME), "random" (a table of
    shapes and parameter counts needs the architecture only)."""
    if weights is not None or not isinstance(model, str):
        return weights
    name = model.lower()
    downloads = (name in APPLICATIONS and name != "vgg16") or name.startswith("torchvision:")
    return "random" if downloads else None


def summary(model="vgg16", weights=None, *, maps=False, seed=0, unsafe=False) -> Table:
    """The tutorial's table for every drawable kernel: layer path, kind, kernel shape, output shape,
    parameters; then the totals and the layers that are not drawn.

    ``model`` is anything :func:`montage.models.load_model` takes (a name, a file, a Keras model);
    ``weights``, ``seed`` and ``unsafe`` are as there. With ``maps``, the table lists instead every
    layer or node whose output is 2-D maps (rank 4), with its op and output shape: the names
    ``features(layers=...)`` and ``--layer`` take. The :class:`montage.result.Table` prints as text,
    shows as HTML in Jupyter, and has the rows as ``records``.
    """
    weights = table_weights(model, weights)
    if maps:     # every layer's output shape: the framework's own model, not the instant path's kernels
        return _maps(load_model(model, weights, seed, unsafe).model)
    model = load_kernels(model, weights, seed, unsafe).model
    rows = [("layer", "kind", "kernel", "output", "params")]
    total = kernel_count = layers = 0
    for node in walk(model):
        blocks = kernels(node)
        layers += bool(blocks)
        for i, k in enumerate(blocks):
            params = int(node.layer.count_params()) if i == 0 else 0
            total += params
            kernel_count += int(np.prod(k.weights.shape[-2:]))
            # the kind only where the op does not already say it: "DepthwiseConv2D", "SeparableConv2D (depthwise)"
            label = k.op if k.kind == "filters" or k.kind in k.op.lower() else f"{k.op} ({k.kind})"
            rows.append((k.name, label, str(tuple(k.stored_shape)), str(output_shape(node.layer)),
                         f"{params:,}" if i == 0 else ""))
    lines = _lines(rows, right=(4,))
    split = f" ({len(rows) - 1} blocks: separable convs give two)" if len(rows) - 1 != layers else ""
    footer = [f"{counted(layers, 'conv layer')}{split}, {counted(kernel_count, 'kernel')}, "
              f"{counted(total, 'parameter')}"]
    if skipped(model):
        footer.append(skipped(model))
    return Table("\n".join(lines + footer), rows[0], rows[1:], footer)


def _maps(model) -> Table:
    """Every layer or node with 2-D maps: path, op, output shape (batch first, channels last)."""
    nodes = list(walk(model))
    rows = [("layer", "op", "output")]
    rows += [(n.name, op_name(n.layer), str(output_shape(n.layer))) for n in nodes if is_map(n.layer)]
    footer = [f"{counted(len(rows) - 1, 'layer')} with 2-D maps (pass their names to features --layer)"]
    if not any(output_rank(n.layer) for n in nodes):
        why = getattr(model, "shape_error", None) or ("its layers were never called in a graph (a subclassed "
                                                     "model?): rebuild it functionally")
        footer.append(f"no layer's output shape is known: {why}")
    return Table("\n".join(_lines(rows) + footer), rows[0], rows[1:], footer)
