#!/usr/bin/env python3
"""Convert Keras VGG16 HDF5 weights (.h5) to ember safetensors in torchvision's naming.

Usage: python3 keras_vgg.py IN.h5 OUT.safetensors

Accepts both layouts Keras writes:
  * full-model saves (model.save):        /model_weights/<layer>/<layer>/kernel:0
  * weights-only saves (save_weights and the released vgg16_weights_tf_dim_ordering_tf_kernels
    [_notop].h5 files):                   /<layer>/<layer>/kernel:0, or Keras-1 names such as
                                          /<layer>/<layer>_W_1:0
Datasets are located through each layer group's "weight_names" attribute (in Keras's own order:
kernel, then bias), which is how Keras itself loads them; include_top and notop files both work
(notop yields only the features.* tensors).

Layout changes (Keras is channels-last, ember/torchvision are channels-first):
  * Conv2D kernel HWIO -> OIHW (Keras convolution is cross-correlation like torch: no flip).
  * Dense kernel [in, out] -> [out, in].
  * fc1's input index is a channels-last flatten (h, w, c) of the 7x7x512 map in Keras but
    (c, h, w) in torchvision, so its input dimension is permuted; ember's NCHW flatten then
    computes exactly what Keras computes.
Theano-ordered files (*_th_dim_ordering_th_kernels.h5, flipped kernels) are rejected.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from torchvision_vgg import (CLASSIFIER_INDICES, KERAS_CONV_NAMES, check_vgg16,  # noqa: E402
                             classifier_dims, conv_layers)

KERAS_DENSE_NAMES = ("fc1", "fc2", "predictions")
FINAL_MAP = (512, 7, 7)  # (C, H, W) of the feature map flattened into fc1


def read_name_list(group, attr):
    """Read a list-of-names attribute; Keras splits long ones into attr0, attr1, ... chunks
    because HDF5 object headers are limited to 64 KiB."""
    if attr in group.attrs:
        raw = list(group.attrs[attr])
    else:
        raw, chunk = [], 0
        while f"{attr}{chunk}" in group.attrs:
            raw.extend(group.attrs[f"{attr}{chunk}"])
            chunk += 1
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in raw]


def layer_weights(root, layer, source):
    """Return (kernel, bias) of a Keras layer group, or None if the file lacks the layer."""
    if layer not in root:
        return None
    group = root[layer]
    names = read_name_list(group, "weight_names")
    if not names:  # hand-made files may lack the attribute: fall back to the datasets present
        names = []
        group.visit(lambda n: names.append(n) if hasattr(group[n], "shape") else None)
        names.sort(key=lambda n: 0 if ("kernel" in n or "_W" in n) else 1)
    arrays = [np.asarray(group[n], dtype=np.float32) for n in names]
    if len(arrays) != 2 or arrays[0].ndim < 2 or arrays[1].ndim != 1:
        shapes = [list(a.shape) for a in arrays]
        raise ValueError(f"{source}: layer '{layer}' should hold [kernel, bias], found "
                         f"{names} with shapes {shapes}")
    return arrays[0], arrays[1]


def convert_conv(kernel, layer, cin, cout, source):
    if kernel.shape != (3, 3, cin, cout):
        hint = (" (looks like Theano OIHW ordering, which is not supported)"
                if kernel.shape == (cout, cin, 3, 3) else "")
        raise ValueError(f"{source}: '{layer}' kernel shape {list(kernel.shape)}, expected "
                         f"HWIO {[3, 3, cin, cout]}{hint}")
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def convert_fc1(kernel):
    """[H*W*C, out] with (h, w, c) input order -> [out, C*H*W] with (c, h, w) input order."""
    channels, height, width = FINAL_MAP
    out = kernel.shape[1]
    hwc = kernel.reshape(height, width, channels, out)
    return np.ascontiguousarray(hwc.transpose(3, 2, 0, 1).reshape(out, channels * height * width))


def convert(path):
    import h5py
    tensors = {}
    try:
        handle = h5py.File(path, "r")
    except OSError as err:  # h5py's message does not say which file
        raise ValueError(f"{path}: cannot open as HDF5 ({err})") from err
    with handle as f:
        root = f["model_weights"] if "model_weights" in f else f
        listed = read_name_list(root, "layer_names")
        for (index, cin, cout), layer in zip(conv_layers(batch_norm=False), KERAS_CONV_NAMES):
            weights = layer_weights(root, layer, path)
            if weights is None:
                raise ValueError(f"{path}: missing Keras layer '{layer}' (layers in file: "
                                 f"{listed or list(root.keys())}); is this a VGG16 file?")
            tensors[f"features.{index}.weight"] = convert_conv(weights[0], layer, cin, cout, path)
            tensors[f"features.{index}.bias"] = weights[1]
        dense = [layer_weights(root, name, path) for name in KERAS_DENSE_NAMES]
        present = [name for name, w in zip(KERAS_DENSE_NAMES, dense) if w is not None]
        if present and len(present) != len(KERAS_DENSE_NAMES):
            raise ValueError(f"{path}: partial classifier: has {present}, need all of "
                             f"{list(KERAS_DENSE_NAMES)} (include_top) or none (notop)")
        if present:  # widths come from the file (fc1: hidden, predictions: classes), then checked
            dims = classifier_dims(dense[0][0].shape[-1], dense[2][0].shape[-1])
        for name, weights, index in zip(KERAS_DENSE_NAMES, dense, CLASSIFIER_INDICES):
            if weights is None:
                continue
            kernel, bias = weights
            fin, fout = dims[KERAS_DENSE_NAMES.index(name)]
            if kernel.shape != (fin, fout) or bias.shape != (fout,):
                raise ValueError(f"{path}: '{name}' kernel {list(kernel.shape)} bias "
                                 f"{list(bias.shape)}, expected [{fin}, {fout}] and [{fout}]")
            matrix = convert_fc1(kernel) if name == "fc1" else np.ascontiguousarray(kernel.T)
            tensors[f"classifier.{index}.weight"] = matrix
            tensors[f"classifier.{index}.bias"] = bias
    return tensors, bool(present)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    in_path, out_path = argv[1], argv[2]
    try:
        tensors, include_top = convert(in_path)
        metadata = {"format": "ember", "source": "keras", "architecture": "vgg16_notop"}
        if include_top:  # the full set must also pass the torchvision key/shape check
            variant, hidden, classes = check_vgg16(tensors, in_path)
            metadata.update(architecture=variant, classifier_hidden=str(hidden),
                            num_classes=str(classes))
    except (ValueError, OSError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    variant = metadata["architecture"]
    safetensors_io.save(out_path, tensors, metadata)
    count = sum(v.size for v in tensors.values())
    print(f"{in_path}: {variant}, {len(tensors)} tensors, {count} parameters -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
