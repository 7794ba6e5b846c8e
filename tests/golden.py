"""A golden set of renders, to prove a restructuring changes no output byte.

    python tests/golden.py DIR          # renders into DIR/out, prints 'sha256  path' per file

Run it before and after a change with the same DIR and compare the two listings (``diff``).
Covers filters of VGG16 (HED weights, RGB, every normalisation), a ``.keras`` file read with
and without Keras, features and examples (both scores) of Keras, channels-first Keras,
torchvision and ONNX models. Inputs are made here, deterministically.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]


def _inputs(d):
    sys.modules["triton"] = None   # torch's triton crashes beside TensorFlow's LLVM (montage does the same)
    import keras
    import torch
    import torchvision

    from helpers import kinds_model, random_images, small_model

    imgs = [str(p) for p in random_images(d / "imgs", 3, side=48)]
    small_model(side=32).save(d / "small.keras")
    kinds_model()[0].save(d / "kinds.keras")
    keras.utils.set_random_seed(3)
    inp = keras.Input((3, 32, 32))
    x = keras.layers.Conv2D(4, 3, data_format="channels_first", name="c")(inp)
    keras.Model(inp, keras.layers.MaxPooling2D(data_format="channels_first", name="p")(x)).save(d / "cf.keras")
    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval()
    torch.onnx.export(net, torch.zeros(1, 3, 64, 64), str(d / "r18.onnx"), dynamo=False,
                      dynamic_axes={"input": {0: "n"}}, input_names=["input"])
    return imgs


def _cases(d, imgs):
    small, kinds, cf, onnx = (str(d / n) for n in ("small.keras", "kinds.keras", "cf.keras", "r18.onnx"))
    cases = {"vgg16-rgb": ["filters", "--layer", "block1_conv1", "block1_conv2", "--rgb"]}
    for mode in ("global", "filter", "channel", "cell", "symmetric"):
        cases[f"vgg16-{mode}"] = ["filters", "--layer", "block1_conv1", "--normalize", mode, "--clip", "1"]
    cases |= {
        "small-filters": ["filters", "--model", small, "--layer", "all"],
        "kinds-filters": ["filters", "--model", kinds, "--layer", "all"],
        "kinds-filters-keras": ["filters", "--model", kinds, "--layer", "all", "--weights", "random"],
        "small-layers": ["layers", "--model", kinds],
        "cf-features": ["features", "--model", cf, "--image", *imgs],
        "r18-filters": ["filters", "--model", "torchvision:resnet18", "--weights", "random", "--layer", "all"],
        "r18-features": ["features", "--model", "torchvision:resnet18", "--weights", "random", "--size", "64",
                         "--image", *imgs, "--layer", "layer1.0.conv1", "layer2"],
        "onnx-filters": ["filters", "--model", onnx, "--layer", "all"],
        "onnx-features": ["features", "--model", onnx, "--image", *imgs, "--preprocess", "torch"],
        "onnx-examples": ["examples", "--model", onnx, "--image", *imgs, "--score", "mean", "--top", "2"],
    }
    for mode in ("channel", "layer", "image"):
        cases[f"small-features-{mode}"] = ["features", "--model", small, "--image", *imgs, "--layer", "all",
                                           "--normalize", mode]
    for score in ("max", "mean"):
        cases[f"small-examples-{score}"] = ["examples", "--model", small, "--image", *imgs, "--layer", "all",
                                            "--score", score, "--top", "2"]
    cases["small-examples-overlay"] = ["examples", "--model", small, "--image", *imgs, "--layer", "all", "--top", "3",
                                       "--overlay"]
    cases["r18-examples"] = ["examples", "--model", "torchvision:resnet18", "--weights", "random", "--size", "64",
                             "--image", *imgs, "--layer", "conv1", "layer1.0.conv1", "layer2", "--top", "2"]
    return cases


def main(folder):
    d = Path(folder).resolve()
    d.mkdir(parents=True, exist_ok=True)
    imgs = _inputs(d)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for name, args in _cases(d, imgs).items():
        out = d / "out" / name
        cmd = [sys.executable, "-m", "montage", *args] + ([] if args[0] == "layers" else ["--out", str(out),
                                                                                         "--overwrite", "--quiet"])
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode:
            sys.exit(f"{name}: {r.stderr[-2000:]}")
        if args[0] == "layers":
            out.mkdir(parents=True, exist_ok=True)
            (out / "stdout.txt").write_text(r.stdout)
    for root, _, files in sorted(os.walk(d / "out")):
        for f in sorted(files):
            p = Path(root) / f
            print(hashlib.sha256(p.read_bytes()).hexdigest(), p.relative_to(d))


if __name__ == "__main__":
    main(sys.argv[1])
