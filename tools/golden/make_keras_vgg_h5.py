#!/usr/bin/env python3
"""Write the weights of a torchvision VGG16 .pth as Keras-layout HDF5 files.

Usage: python3 make_keras_vgg_h5.py IN.pth OUTDIR

This is the exact inverse of tools/convert/keras_vgg.py's layout changes, so converting these
files back must reproduce the torchvision tensors bit for bit. It writes the three layouts real
Keras VGG16 files come in:
  vgg16_keras_model.h5          model.save(): /model_weights/<layer>/<layer>/kernel:0, include_top
  vgg16_keras_weights.h5        save_weights(): /<layer>/<layer>/kernel:0, include_top
  vgg16_keras_weights_notop.h5  like the released *_notop.h5 (Keras 1 names <layer>_W_1:0), no top
Weightless layers (input, pools, flatten) are listed in layer_names with empty weight_names,
as Keras does.
"""
import json
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "convert"))
from torchvision_vgg import (CLASSIFIER_INDICES, KERAS_CONV_NAMES, check_vgg16,  # noqa: E402
                             conv_layers, load_state_dict)

FINAL_MAP = (512, 7, 7)


def keras_layers(tensors, include_top):
    """Return [(layer name, [kernel, bias] or [])] in Keras VGG16's layer order and layout."""
    layers = [("input_1", [])]
    convs = {name: index for (index, _, _), name in zip(conv_layers(False), KERAS_CONV_NAMES)}
    for name in KERAS_CONV_NAMES:
        index = convs[name]
        kernel = tensors[f"features.{index}.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
        layers.append((name, [kernel, tensors[f"features.{index}.bias"]]))
        if name in ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3",
                    "block5_conv3"):
            layers.append((name.split("_")[0] + "_pool", []))
    if not include_top:
        return layers
    layers.append(("flatten", []))
    channels, height, width = FINAL_MAP
    for name, index in zip(("fc1", "fc2", "predictions"), CLASSIFIER_INDICES):
        weight = tensors[f"classifier.{index}.weight"]  # [out, in]
        if name == "fc1":  # input order (c, h, w) -> Keras channels-last flatten (h, w, c)
            weight = weight.reshape(-1, channels, height, width).transpose(2, 3, 1, 0)
            kernel = weight.reshape(height * width * channels, -1)
        else:
            kernel = weight.T
        layers.append((name, [kernel, tensors[f"classifier.{index}.bias"]]))
    return layers


def write(path, layers, full_model, keras1_names):
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        if full_model:  # model.save() also stores the architecture; a stub is enough here
            f.attrs["model_config"] = json.dumps({"class_name": "Functional",
                                                  "config": {"name": "vgg16"}})
        for holder in {id(f): f, id(root): root}.values():
            holder.attrs["keras_version"] = np.bytes_("1.2.2" if keras1_names else "2.11.0")
            holder.attrs["backend"] = np.bytes_("tensorflow")
        root.attrs["layer_names"] = np.array([n.encode() for n, _ in layers], dtype="S")
        for name, weights in layers:
            group = root.create_group(name)
            suffixes = ("_W_1:0", "_b_1:0") if keras1_names else ("/kernel:0", "/bias:0")
            weight_names = [name + s for s in suffixes] if weights else []
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names], dtype="S")
            for weight_name, value in zip(weight_names, weights):
                # Keras-2 names contain '/', which h5py turns into a subgroup: <layer>/<layer>/kernel:0
                group.create_dataset(weight_name, data=np.ascontiguousarray(value, np.float32))


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    tensors = load_state_dict(argv[1])
    if check_vgg16(tensors, argv[1])[0] != "vgg16":
        print(f"error: {argv[1]}: Keras VGG16 has no batch norm; pass a plain vgg16 .pth",
              file=sys.stderr)
        return 1
    os.makedirs(argv[2], exist_ok=True)
    outputs = (("vgg16_keras_model.h5", True, True, False),
               ("vgg16_keras_weights.h5", True, False, False),
               ("vgg16_keras_weights_notop.h5", False, False, True))
    for filename, include_top, full_model, keras1_names in outputs:
        path = os.path.join(argv[2], filename)
        write(path, keras_layers(tensors, include_top), full_model, keras1_names)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
