#!/usr/bin/env python3
"""Pure-numpy float forward of the converted MobileNet-v1, to prove tflite_mobilenet.py right
before ember's C++ model exists, and to pin down the exact preprocessing ember must copy.

Usage: python3 mobilenet_reference.py WEIGHTS.safetensors [MODEL_DIR] [--pad tf|symmetric]
                                      [--resize bilinear|pil] [--top K]
                                      [--golden OUT.safetensors]

--golden writes, per image stem (cat, bird, grace_hopper): "<stem>.input" [1,3,224,224] (after
steps 1-3), "<stem>.embedding" [1,1024] and "<stem>.logits" [1,1001], so ember's C++ model can be
checked numerically (top-1 alone does not notice e.g. symmetric padding, which also gets all
three labels right but moves the probabilities a lot).

Pipeline (the one that reproduces the reference labels):
  1. read the BMP as 8-bit RGB (tiny reader below: 24-bit BI_RGB, either row order);
  2. resize to 224x224 ignoring aspect ratio, bilinear with half-pixel centres
     (src = (dst + 0.5) * in/out - 0.5, clamped to the edge; no antialiasing);
  3. x = (pixel - 128) / 128, from the input tensor's quantization (scale 1/128, zero point 128);
  4. NCHW float32 through: conv3x3/s2 -> 13 x [depthwise 3x3 (stride 1 or 2), pointwise 1x1],
     each + bias then ReLU6; TF 'SAME' padding: total = max((ceil(in/s)-1)*s + k - in, 0),
     top/left = total // 2, bottom/right = the rest (so stride 2 on 224 pads 0 before, 1 after);
  5. global average pool 7x7 -> 1024, classifier 1024 -> 1001 (+bias), softmax;
     index 0 of the 1001 labels is "background".
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                           "shared", "models", "mobilenet_v1_224_quant")
EXPECTED = {"cat.bmp": "Egyptian cat", "bird.bmp": "chickadee",
            "grace_hopper.bmp": "military uniform"}


def read_bmp(path):
    """Uncompressed 24/32-bit BMP -> uint8 [H, W, 3] RGB, top row first."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:2] != b"BM":
        raise ValueError(f"{path}: not a BMP file")
    data_offset = struct.unpack_from("<I", blob, 10)[0]
    width, height, _, bits, compression = struct.unpack_from("<iiHHI", blob, 18)
    if compression not in (0, 3) or bits not in (24, 32):
        raise ValueError(f"{path}: only uncompressed 24/32-bit BMP supported "
                         f"(bits {bits}, compression {compression})")
    channels = bits // 8
    stride = (width * channels + 3) & ~3          # rows are padded to 4 bytes
    rows = np.frombuffer(blob, np.uint8, count=stride * abs(height), offset=data_offset)
    pixels = rows.reshape(abs(height), stride)[:, :width * channels].reshape(abs(height), width,
                                                                             channels)
    if height > 0:                                # positive height = bottom-up storage
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # BGR(A) -> RGB


def resize_bilinear(image, size):
    """Half-pixel-centre bilinear resize of [H, W, C] to [size, size, C] in float32."""
    def axis(n_in):
        src = (np.arange(size) + 0.5) * (n_in / size) - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)
    y0, y1, fy = axis(image.shape[0])
    x0, x1, fx = axis(image.shape[1])
    img = image.astype(np.float32)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bot = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def same_padding(size, kernel, stride, mode):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    if mode == "symmetric":                       # what a naive PyTorch port would do
        return kernel // 2, kernel // 2
    return total // 2, total - total // 2


def conv2d(x, weight, bias, stride, groups, pad_mode):
    """x [C,H,W], weight [O, C/groups, k, k] -> [O, H', W'] (cross-correlation)."""
    _, height, width = x.shape
    k = weight.shape[-1]
    pt, pb = same_padding(height, k, stride, pad_mode)
    pl, pr = same_padding(width, k, stride, pad_mode)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr)))
    out_h = (xp.shape[1] - k) // stride + 1
    out_w = (xp.shape[2] - k) // stride + 1
    taps = [xp[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride]
            for i in range(k) for j in range(k)]   # each [C, out_h, out_w]
    if groups == 1:
        cols = np.stack(taps, axis=1).reshape(x.shape[0] * k * k, out_h * out_w)  # (c, i, j)
        y = weight.reshape(weight.shape[0], -1) @ cols
        y = y.reshape(-1, out_h, out_w)
    else:                                          # depthwise: one filter per channel
        y = sum(tap * weight[:, 0, t // k, t % k][:, None, None] for t, tap in enumerate(taps))
    return y + bias[:, None, None]


def forward(weights, layers, image_chw, pad_mode):
    x = image_chw
    for layer in layers:
        if layer["name"] == "classifier":
            continue
        w, b = weights[layer["name"] + ".weight"], weights[layer["name"] + ".bias"]
        groups = w.shape[0] if layer["op"] == "DEPTHWISE_CONV_2D" else 1
        x = np.clip(conv2d(x, w, b, layer["stride"][0], groups, pad_mode), 0.0, 6.0)
    embedding = x.mean(axis=(1, 2))
    logits = weights["classifier.weight"] @ embedding + weights["classifier.bias"]
    e = np.exp(logits - logits.max())
    return embedding, logits, e / e.sum()


def load_image(path, resize, quant):
    pixels = read_bmp(path)
    if resize == "pil":
        from PIL import Image
        pixels = np.asarray(Image.fromarray(pixels).resize((224, 224), Image.BILINEAR),
                            dtype=np.float32)
    else:
        pixels = resize_bilinear(pixels, 224)
    x = (pixels - quant["zero_point"]) * quant["scale"]
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("model_dir", nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--pad", choices=("tf", "symmetric"), default="tf")
    parser.add_argument("--resize", choices=("bilinear", "pil"), default="bilinear")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--golden", help="write inputs/embeddings/logits to this safetensors")
    args = parser.parse_args()
    weights, metadata = safetensors_io.load(args.weights)
    layers = json.loads(metadata["layers"])
    quant = json.loads(metadata["input_quantization"])
    with open(os.path.join(args.model_dir, "imagenet_labels.txt")) as f:
        labels = [line.strip() for line in f]
    failures, golden = 0, {}
    for name, expected in EXPECTED.items():
        x = load_image(os.path.join(args.model_dir, name), args.resize, quant)
        embedding, logits, probs = forward(weights, layers, x, args.pad)
        stem = os.path.splitext(name)[0]
        golden.update({f"{stem}.input": x[None], f"{stem}.embedding": embedding[None],
                       f"{stem}.logits": logits[None]})
        order = np.argsort(-probs)[:args.top]
        top = ", ".join(f"{i} {labels[i]!r} {probs[i]:.3f}" for i in order)
        ok = labels[order[0]] == expected
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:<17} expected {expected!r:<19} top: {top}")
    if args.golden:
        safetensors_io.save(args.golden, {k: v.astype(np.float32) for k, v in golden.items()},
                            {"pad": args.pad, "resize": args.resize,
                             "weights": os.path.basename(args.weights)})
        print(f"golden -> {args.golden}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
