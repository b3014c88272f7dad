#!/usr/bin/env python3
"""Convert a torchvision VGG16 / VGG16-BN state_dict (.pth) to ember safetensors.

Usage: python3 torchvision_vgg.py IN.pth OUT.safetensors

Names are kept exactly as torchvision writes them (features.0.weight ... classifier.6.bias);
BatchNorm keeps weight/bias/running_mean/running_var and drops num_batches_tracked, which is
training bookkeeping ember does not need. Everything is stored as F32.

The VGG16 layout helpers here (conv channel plan, torchvision module indices) are shared by
keras_vgg.py and tools/golden/*, so there is one definition of "what VGG16 looks like".
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

# torchvision cfg "D": output channels of each conv, "M" = 2x2 max pool.
VGG16_PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
              512, 512, 512, "M", 512, 512, 512, "M"]
# Keras names its 13 convs blockB_convK; the order matches VGG16_PLAN's convs.
KERAS_CONV_NAMES = [f"block{b}_conv{k}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                    for k in range(1, n + 1)]
CLASSIFIER_INDICES = (0, 3, 6)          # Linear layers inside torchvision's classifier Sequential
FLATTEN_FEATURES = 512 * 7 * 7          # fc1 input: AdaptiveAvgPool2d((7, 7)) of 512 channels
VGG16_HIDDEN, VGG16_CLASSES = 4096, 1000


def classifier_dims(hidden=VGG16_HIDDEN, classes=VGG16_CLASSES):
    """(in, out) of the three Linear layers. Real VGG16 uses hidden=4096; a narrower hidden
    width is accepted so tests can use a 20M- instead of a 138M-parameter file."""
    return ((FLATTEN_FEATURES, hidden), (hidden, hidden), (hidden, classes))


def conv_layers(batch_norm):
    """Yield (features index of the conv, in_ch, out_ch) in torchvision's numbering.

    Without BN each conv is followed by ReLU (2 modules); with BN by BN+ReLU (3 modules);
    each "M" is one MaxPool module. That fixes the indices 0,2,5,7,... / 0,3,7,10,...
    """
    index, in_ch, per_conv = 0, 3, (3 if batch_norm else 2)
    for item in VGG16_PLAN:
        if item == "M":
            index += 1
            continue
        yield index, in_ch, item
        in_ch = item
        index += per_conv


def expected_shapes(batch_norm, hidden=VGG16_HIDDEN, classes=VGG16_CLASSES):
    """Map name -> shape for every tensor a torchvision vgg16(_bn) state_dict carries."""
    shapes = {}
    for index, cin, cout in conv_layers(batch_norm):
        shapes[f"features.{index}.weight"] = (cout, cin, 3, 3)
        shapes[f"features.{index}.bias"] = (cout,)
        if batch_norm:
            for field in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"features.{index + 1}.{field}"] = (cout,)
    for index, (fin, fout) in zip(CLASSIFIER_INDICES, classifier_dims(hidden, classes)):
        shapes[f"classifier.{index}.weight"] = (fout, fin)
        shapes[f"classifier.{index}.bias"] = (fout,)
    return shapes


def check_vgg16(tensors, source):
    """Decide vgg16 vs vgg16_bn from the keys, verify every name and shape, and return
    (variant, hidden width, number of classes). The class count (torchvision's num_classes) and
    the hidden width are read from the classifier and then checked for consistency."""
    names = set(tensors)
    batch_norm = "features.1.running_mean" in names
    variant = "vgg16_bn" if batch_norm else "vgg16"
    hidden, classes = VGG16_HIDDEN, VGG16_CLASSES
    if "classifier.0.weight" in names and "classifier.6.weight" in names:
        hidden = tensors["classifier.0.weight"].shape[0]
        classes = tensors["classifier.6.weight"].shape[0]
    expected = expected_shapes(batch_norm, hidden, classes)
    missing = sorted(set(expected) - names)
    unexpected = sorted(names - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{source}: not a torchvision {variant} state_dict: "
            f"missing {len(missing)} keys {missing[:8]}, unexpected {len(unexpected)} keys "
            f"{unexpected[:8]} (expected {len(expected)} keys; was this saved from vgg16/vgg16_bn?)")
    for name, shape in expected.items():
        actual = tuple(tensors[name].shape)
        if actual != shape:
            raise ValueError(f"{source}: tensor '{name}' has shape {list(actual)}, "
                             f"{variant} expects {list(shape)}")
    return variant, hidden, classes


def load_state_dict(path):
    import torch  # imported here so keras/tflite users need no torch
    try:
        obj = torch.load(path, map_location="cpu")
    except OSError:
        raise
    except Exception as err:  # torch raises pickle/zip errors of several types on bad files
        raise ValueError(f"{path}: torch.load failed ({type(err).__name__}: {err}); "
                         f"is this a PyTorch .pth file?") from err
    # Accept a whole pickled model or a {"state_dict": ...} checkpoint as well as a bare dict.
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict (dict of tensors), got {type(obj).__name__}")
    tensors = {}
    for name, value in obj.items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.startswith("module."):  # DataParallel checkpoints prefix every key
            name = name[len("module."):]
        tensors[name] = value.detach().cpu().to(torch.float32).numpy()
    return tensors


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    in_path, out_path = argv[1], argv[2]
    try:
        tensors = load_state_dict(in_path)
        variant, hidden, classes = check_vgg16(tensors, in_path)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    safetensors_io.save(out_path, tensors, {"format": "ember", "source": "torchvision",
                                            "architecture": variant,
                                            "classifier_hidden": str(hidden),
                                            "num_classes": str(classes)})
    count = sum(v.size for v in tensors.values())
    note = "" if hidden == VGG16_HIDDEN else f" (non-standard classifier width {hidden})"
    print(f"{in_path}: {variant}, {classes} classes, {len(tensors)} tensors, {count} parameters"
          f"{note} -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
