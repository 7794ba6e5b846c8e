"""Command line: a thin layer over the API; errors become one line and exit code 2.

``montage --help`` must not load TensorFlow: no module of montage imports a framework up front.
"""

import argparse
import atexit
import contextlib
import os
import signal
import sys
import threading

from . import history_cli, render_examples, render_features, render_filters, render_optimize
from ._lock import stop_requested
from ._version import __version__
from .errors import Interrupted, MontageError
from .input_options import ExamplesOptions, FeaturesOptions, OptimizeOptions
from .models import load_kernels, load_model
from .options import FiltersOptions, LayersOptions
from .paths import private_dir
from .render_layers import summary, table_weights
from .serve import serve
from .signatures import add_arguments, from_arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"montage: error: {message} (see `{self.prog} --help`)\n")


def build_parser():

    parser = _Parser(prog="montage", description="Every filter and feature map of a CNN, at full "
                     "resolution, as zoomable Deep Zoom images with an offline viewer page.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("layers", help="list conv layers: kernel shape, output shape, parameters (--maps: "
                       "every layer with 2-D maps)")
    add_arguments(p, LayersOptions)
    p = sub.add_parser("filters", help="render every kernel of conv layers",
                       description="Row i = filter (output channel) i, column j = input channel j. "
                       "--cell N: each kernel at most N pixels across, a whole number of pixels per weight (a note "
                       "says when N is rounded down); default 2 pixels per weight. The page zooms far past 1:1.")
    add_arguments(p, FiltersOptions)
    p = sub.add_parser("features", help="render every channel of every layer for input images",
                       description="One atlas per image: each layer a block of its channels. "
                       "--cell N: each map at least N pixels across, a whole number of pixels per activation (rounded "
                       "up); default 1 pixel per activation.")
    add_arguments(p, FeaturesOptions)
    p = sub.add_parser("examples", help="for every channel, the images and patches that excite it most",
                       description="One streamed pass over a dataset: each channel's top images by the "
                       "spatial max (or mean) of its map, each shown as the patch its unit sees. "
                       "Rows = channels, columns = ranks.")
    add_arguments(p, ExamplesOptions)
    p = sub.add_parser("optimize", help="for every channel, the picture it responds to most (feature visualisation)",
                       description="Gradient ascent from noise, one channel per batch item (Lucid's method: "
                       "decorrelated Fourier parameters, random jitter, scale and rotation, Adam). Each layer a "
                       "block, its channels in a near-square grid. ONNX graphs have no gradients here.")
    add_arguments(p, OptimizeOptions)
    history_cli.add_parser(sub)

    p = sub.add_parser("serve", help="serve an output folder over HTTP (e.g. through an SSH tunnel)")
    p.add_argument("dir", help="a folder montage wrote")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    return parser


def _version():
    return f"montage {__version__}"


def _layers(args):
    opts = from_arguments(LayersOptions, args)
    weights = table_weights(opts.model, opts.weights)
    loaded = (load_model if opts.maps else load_kernels)(opts.model, weights, opts.seed, opts.unsafe)
    if weights != opts.weights:
        print(f"{loaded.name}: the architecture alone (a table of shapes needs no weights; --weights loads them)")
    else:
        print(f"{loaded.name}: {loaded.weights.get('source')} weights")
    print(summary(loaded, maps=opts.maps))


def _filters(args):
    render_filters.run(from_arguments(FiltersOptions, args))


def _features(args):
    render_features.run(from_arguments(FeaturesOptions, args))


def _examples(args):
    render_examples.run(from_arguments(ExamplesOptions, args))


def _optimize(args):
    render_optimize.run(from_arguments(OptimizeOptions, args))


def _serve(args):
    serve(args.dir, args.host, args.port)


def _stop(signum, frame):
    stop_requested.append(signum)   # seen by check_stop() if a C callback drops the exception
    raise Interrupted(signum)


@contextlib.contextmanager
def _stoppable():
    """Ctrl-C, SIGTERM (docker stop, systemd, CI runners) and SIGHUP stop a run through the same
    clean-up, so no partial output is left behind (and are remembered: see ``_lock.check_stop``)."""
    stop_requested.clear()
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, _stop) for s in sigs}
    hook = sys.unraisablehook

    def unraisable(u):
        # A stop raised inside a C callback (libvips' log and progress callbacks, through cffi)
        # cannot propagate; it is in stop_requested and the run stops at its next check.
        if not isinstance(u.exc_value, KeyboardInterrupt):
            hook(u)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        sys.unraisablehook = hook
        stop_requested.clear()   # a later run in this process (a notebook, tests) starts afresh


def _quiet_environment():
    """Keep libraries from chattering on stderr: TensorFlow's C++ logs, and the notes of
    matplotlib and onnxruntime about an unusable HOME (they get a private temp folder instead)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    probe = os.path.expanduser("~")
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:   # matplotlib would mkdir -p it
        probe = os.path.dirname(probe)
    if os.path.isdir(probe) and os.access(probe, os.W_OK):
        return

    # matplotlib's config, and the caches under XDG_CACHE_HOME (onnxruntime's telemetry ID,
    # which otherwise says in colour that it could not be written)
    for var, name in (("MPLCONFIGDIR", "matplotlib"), ("XDG_CACHE_HOME", "cache")):
        path = None if var in os.environ else private_dir(name)
        if path:
            os.environ[var] = path


def _leave(code):
    """End the process now that the output is on disk: TensorFlow's and PyTorch's teardown at
    interpreter exit keeps the prompt waiting seconds after the last line. Streams are flushed
    and exit handlers run (pyvips' log handlers) first; nothing else is pending by then."""
    if not any(m in sys.modules for m in ("tensorflow", "torch")):
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(code)


def main(argv=None):
    """``montage ARGS`` (``argv``: the arguments, default the command line's; then the process
    ends as soon as the result is written). Returns the exit status."""
    code = _main(argv)
    return _leave(code) if argv is None else code


def _main(argv):
    _quiet_environment()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return e.code
    commands = {"layers": _layers, "filters": _filters, "features": _features, "examples": _examples,
                "optimize": _optimize, "serve": _serve, "history": history_cli.run}
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
