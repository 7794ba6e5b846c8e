"""Pure geometry: grids of cells, blocks packed on shelves, pixel <-> cell.

Nothing here knows about Keras, numba or files. A :class:`Grid` is what the
manifest records for each block, and :func:`locate` is how any canvas pixel maps
back to (cell row, cell column, y, x inside the cell).
"""

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Grid:
    """A ``rows`` x ``cols`` grid of ``cell_h`` x ``cell_w`` samples, each repeated ``scale`` times.

    Cells are ``gap`` pixels apart; the grid has no outer border.
    """

    rows: int
    cols: int
    n: int
    cell_h: int
    cell_w: int
    scale: int = 1
    gap: int = 1

    @property
    def pitch_y(self):
        return self.cell_h * self.scale + self.gap

    @property
    def pitch_x(self):
        return self.cell_w * self.scale + self.gap

    @property
    def height(self):
        return self.rows * self.pitch_y - self.gap

    @property
    def width(self):
        return self.cols * self.pitch_x - self.gap

    def to_dict(self):
        return asdict(self)


# World pixels between the blocks (layers) of one plane.
LAYER_GAP = 32


def scale_at_most(cell, cell_h, cell_w):
    """Pixel repeat that draws a cell at most ``cell`` pixels on its longer side (at least 1).

    Filters' ``--cell``: a kernel is never drawn larger than asked.
    """
    return max(1, int(cell) // max(cell_h, cell_w))


def scale_at_least(cell, cell_h, cell_w):
    """Pixel repeat that draws a cell at least ``cell`` pixels on its longer side.

    Feature maps' ``--cell`` and the flat PNG's ``--png-cell``: small maps are blown up
    until they are legible.
    """
    return max(1, math.ceil(int(cell) / max(cell_h, cell_w)))


def near_square(n):
    """(rows, cols) of the most square grid that holds ``n`` cells, ``cols >= rows``."""
    if n <= 0:
        return 0, 0
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def locate(grid, y, x):
    """Cell under canvas pixel (y, x) of a grid whose origin is (0, 0).

    Returns
    -------
    (row, col, cy, cx) or None
        Grid row and column, and the sample inside the cell; None over a gap,
        outside the grid or over an empty trailing cell.
    """
    if not (0 <= y < grid.height and 0 <= x < grid.width):
        return None
    row, ry = divmod(y, grid.pitch_y)
    col, rx = divmod(x, grid.pitch_x)
    if ry >= grid.cell_h * grid.scale or rx >= grid.cell_w * grid.scale:
        return None
    if row * grid.cols + col >= grid.n:
        return None
    return row, col, ry // grid.scale, rx // grid.scale


def _shelves(sizes, gap, max_width):
    origins = []
    y = x = shelf_h = width = 0
    for h, w in sizes:
        if x > 0 and x + w > max_width:
            y += shelf_h + gap
            x = shelf_h = 0
        origins.append((y, x))
        x += w + gap
        shelf_h = max(shelf_h, h)
        width = max(width, x - gap)
    return origins, (y + shelf_h, width)


def shelf_pack(sizes, gap, max_width=None):
    """Place (height, width) blocks left to right on shelves, in order.

    Parameters
    ----------
    sizes : list of (int, int)
    gap : int
        Pixels between blocks and between shelves.
    max_width : int, optional
        Start a new shelf when a block would pass this width. Default: among the widths
        where a shelf breaks, the one with the smallest total area (the fewest blank
        pixels to write) whose aspect ratio is at most 2, else the smallest area.

    Returns
    -------
    origins : list of (y, x)
    (height, width) : the size of the whole packing
    """
    if not sizes:
        return [], (0, 0)
    if max_width is not None:
        return _shelves(sizes, gap, max_width)
    widest = max(w for _, w in sizes)
    # Only widths equal to a run of consecutive blocks can change where shelves break.
    candidates = {widest}
    for i in range(len(sizes)):
        run = -gap
        for _, w in sizes[i:]:
            run += w + gap
            if run >= widest:
                candidates.add(run)
    best = None
    for mw in sorted(candidates):
        origins, (h, w) = _shelves(sizes, gap, mw)
        aspect = max(h, w) / max(1, min(h, w))
        key = (aspect > 2.0, h * w, aspect)    # screen-friendly first, then fewest pixels
        if best is None or key < best[0]:
            best = (key, origins, (h, w))
    return best[1], best[2]
