"""The layers table (``montage layers``): the tutorial's summary of every drawable kernel."""

from __future__ import annotations

import numpy as np

from .graph import kernels, output_shape, skipped, walk
from .models import load_kernels
from .result import Table


def summary(model="vgg16", weights=None) -> Table:
    """The tutorial's table for every drawable kernel: layer path, kind, kernel shape, output shape,
    parameters; then the totals and the layers that are not drawn.

    ``model`` is anything :func:`montage.models.load_model` takes (a name, a file, a Keras model).
    The :class:`montage.result.Table` prints as text, shows as HTML in Jupyter, and has the rows
    as ``records``.
    """
    model = load_kernels(model, weights).model
    rows = [("layer", "kind", "kernel", "output", "params")]
    total = kernel_count = layers = 0
    for node in walk(model):
        blocks = kernels(node)
        layers += bool(blocks)
        for i, k in enumerate(blocks):
            params = int(node.layer.count_params()) if i == 0 else 0
            total += params
            kernel_count += int(np.prod(k.weights.shape[-2:]))
            label = k.op if k.kind == "filters" else f"{k.op} ({k.kind})"
            rows.append((k.name, label, str(tuple(k.stored_shape)), str(output_shape(node.layer)),
                         f"{params:,}" if i == 0 else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    split = f" ({len(rows) - 1} blocks: separable convs give two)" if len(rows) - 1 != layers else ""
    footer = [f"{layers} conv layers{split}, {kernel_count:,} kernels, {total:,} parameters"]
    if skipped(model):
        footer.append(skipped(model))
    return Table("\n".join(lines + footer), rows[0], rows[1:], footer)
