"""Command line: a thin layer over the API; errors become one line and exit code 2.

Only argparse is imported up front: ``montage --help`` must not load TensorFlow.
"""

import argparse
import contextlib
import os
import signal
import sys
import threading

from .errors import Interrupted, MontageError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"montage: error: {message} (see `{self.prog} --help`)\n")


def _model_args(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", default="vgg16", help="'vgg16' (default) or a .keras/.h5 model file")
    g.add_argument("--weights", default=None,
                   help="vgg16: hed (default: trained, offline), imagenet (downloads), random, or a "
                        "weights file; a model file: its own weights unless given")
    g.add_argument("--seed", type=int, default=0, help="seed for --weights random, 0 .. 2**32-1 (default 0)")
    g.add_argument("--unsafe", action="store_true",
                   help="allow Lambda layers (arbitrary code) in a model file you trust")


def _output_args(p, cmap, normalize, modes):
    g = p.add_argument_group("output")
    g.add_argument("--out", required=True, help="output folder (refused if not empty, unless --overwrite)")
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty --out once the new one is complete")
    g.add_argument("--cell", type=int, default=None, help="pixels per cell side (default: see below)")
    g.add_argument("--gap", type=int, default=1, help="pixels between cells (default 1)")
    g.add_argument("--gap-color", default="white", help="gap colour: name, #rrggbb or r,g,b (default white)")
    g.add_argument("--nan-color", default="magenta", help="colour of NaN values (default magenta)")
    g.add_argument("--normalize", default=normalize, choices=modes, help=f"(default {normalize})")
    g.add_argument("--clip", type=float, default=0.0, metavar="P",
                   help="clip the P-th percentile at each end of each normalisation group")
    g.add_argument("--cmap", default=cmap, help=f"any matplotlib colormap (default {cmap})")
    g.add_argument("--tile-format", default="png", choices=("png", "webp", "jpeg"),
                   help="Deep Zoom tile format (default png: lossless)")
    g.add_argument("--tiff", action="store_true", help="also write a pyramidal tiled TIFF per image")
    g.add_argument("--quiet", action="store_true", help="no progress bars or notes")


def build_parser():
    from .normalize import GRID_MODES

    parser = _Parser(prog="montage", description="Every filter and feature map of a CNN, at full "
                     "resolution, as zoomable Deep Zoom images with an offline viewer page.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("layers", help="list conv layers: kernel shape, output shape, parameters")
    _model_args(p)

    p = sub.add_parser("filters", help="render every kernel of conv layers",
                       description="Row i = filter (output channel) i, column j = input channel j. "
                       "--cell defaults to 2 pixels per weight; the page zooms far past 1:1.")
    p.add_argument("--layer", nargs="+", default=["block1_conv2"], metavar="NAME",
                   help="conv layer name(s), or 'all' (default block1_conv2)")
    p.add_argument("--rgb", action="store_true",
                   help="layers with 3 input channels: one colour (R, G, B) kernel per filter")
    p.add_argument("--no-png", dest="png", action="store_false", help="skip the flat PNG export")
    p.add_argument("--png-cell", type=int, default=24, help="pixels per kernel side in the flat PNG (default 24)")
    _model_args(p)
    _output_args(p, "gray", "global", GRID_MODES)

    p = sub.add_parser("features", help="render every channel of every layer for input images",
                       description="One atlas per image: each layer a block of its channels. "
                       "--cell defaults to the map's own size (1 pixel per activation).")
    p.add_argument("--image", nargs="+", default=None, metavar="PATH",
                   help="image files, folders or globs (default: a sample photograph)")
    p.add_argument("--layer", nargs="+", default=None, metavar="NAME",
                   help="layer names, or 'all' (conv and pooling); default: every conv layer")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: by memory)")
    p.add_argument("--size", type=int, default=None, help="input side in pixels (default: the model's, 224 for vgg16)")
    p.add_argument("--skip-bad", action="store_true", help="render the good images, list the bad ones")
    p.add_argument("--overlay", action="store_true", help="show the input image beside each atlas")
    _model_args(p)
    _output_args(p, "viridis", "channel", ("channel", "layer", "image"))

    p = sub.add_parser("serve", help="serve an output folder over HTTP (e.g. through an SSH tunnel)")
    p.add_argument("dir", help="a folder montage wrote")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    return parser


def _version():
    from . import __version__

    return f"montage {__version__}"


def _layers(args):
    from .models import load_model, summary

    loaded = load_model(args.model, args.weights, args.seed, args.unsafe)
    print(f"{loaded.name}: {loaded.weights.get('source')} weights")
    print(summary(loaded))


def _filters(args):
    from .render import filters

    filters(args.model, args.layer, args.out, weights=args.weights, seed=args.seed, unsafe=args.unsafe,
            cell=args.cell, gap=args.gap, gap_color=args.gap_color, nan_color=args.nan_color,
            normalize=args.normalize, clip=args.clip, cmap=args.cmap, rgb=args.rgb,
            tile_format=args.tile_format, tiff=args.tiff, png=args.png, png_cell=args.png_cell,
            overwrite=args.overwrite, quiet=args.quiet)


def _features(args):
    from .render import features

    features(args.model, args.image, args.out, layers=args.layer, weights=args.weights, seed=args.seed,
             unsafe=args.unsafe, batch_size=args.batch_size, size=args.size, cell=args.cell, gap=args.gap,
             gap_color=args.gap_color, nan_color=args.nan_color, normalize=args.normalize, clip=args.clip,
             cmap=args.cmap, tile_format=args.tile_format, tiff=args.tiff, skip_bad=args.skip_bad,
             overlay=args.overlay, overwrite=args.overwrite, quiet=args.quiet)


def _serve(args):
    from .serve import serve

    serve(args.dir, args.host, args.port)


def _stop(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def _stoppable():
    """SIGTERM (docker stop, systemd, CI runners) and SIGHUP stop a run as Ctrl-C does:
    through the same clean-up, so no partial output is left behind."""
    sigs = [signal.SIGTERM, signal.SIGHUP]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, _stop) for s in sigs}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return e.code
    commands = {"layers": _layers, "filters": _filters, "features": _features, "serve": _serve}
    try:
        with _stoppable():
            commands[args.command](args)
    except MontageError as e:
        print(f"montage: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        done = getattr(e, "done", None) or "nothing was written to --out"
        print(f"montage: interrupted; {done}", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
