#!/usr/bin/env python3
"""Convert the quantized TFLite MobileNet-v1 (embedding extractor + head) to float safetensors.

Usage:
  python3 tflite_mobilenet.py MODEL_DIR OUT.safetensors
  python3 tflite_mobilenet.py EXTRACTOR.tflite [HEAD.tflite] OUT.safetensors

MODEL_DIR holds the two files of ../shared/models/mobilenet_v1_224_quant. Every uint8 weight is
dequantized as (q - zero_point) * scale and every int32 bias as q * scale (its scale is
input_scale * weight_scale, zero point 0); batch norm is already folded into these.
Layout changes: conv OHWI -> OIHW; depthwise 1,H,W,C -> C,1,H,W; the head's 1x1 conv
[1001,1,1,1024] -> classifier.weight [1001,1024].
Output names: features.0.0 (stem), features.{i}.0 (depthwise) and features.{i}.3 (pointwise)
for blocks i = 1..13, classifier. __metadata__ (JSON strings): "input_quantization",
"layers" (op, stride, padding, activation per conv, in order), "pool", "head_ops".
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import tflite_reader  # noqa: E402

EXTRACTOR_FILE = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
HEAD_FILE = "mobilenet_quant_v1_224_head_layers.tflite"


def dequantize(tensor, source):
    """Float32 copy of a constant tensor; per-channel scales broadcast on quantized_dimension."""
    data = tensor["data"]
    if data is None:
        raise ValueError(f"{source}: tensor '{tensor['name']}' has no constant data")
    if tensor["type"] == "FLOAT32":
        return data.astype(np.float32)
    if not tensor["scale"]:
        raise ValueError(f"{source}: tensor '{tensor['name']}' ({tensor['type']}) has no scale")
    scale = np.asarray(tensor["scale"], dtype=np.float64)
    zero = np.asarray(tensor["zero_point"] or [0], dtype=np.float64)
    if scale.size > 1:  # per-axis quantization: put the scale vector on its axis
        shape = [1] * data.ndim
        shape[tensor["quantized_dimension"]] = scale.size
        scale = scale.reshape(shape)
        zero = zero.reshape(shape) if zero.size > 1 else zero
    return ((data.astype(np.float64) - zero) * scale).astype(np.float32)


def check_bias_scale(op_inputs, tensors, source):
    """TFLite requires bias_scale == input_scale * weight_scale; warn if this file disagrees."""
    x, w, b = (tensors[i] for i in op_inputs[:3])
    if x["scale"] and w["scale"] and b["scale"]:
        expected = x["scale"][0] * w["scale"][0]
        if abs(b["scale"][0] - expected) > 1e-4 * expected:
            print(f"warning: {source}: bias '{b['name']}' scale {b['scale'][0]} != input*weight "
                  f"scale {expected}", file=sys.stderr)


def conv_record(name, op, weight):
    opts = op["options"]
    return {"name": name, "op": op["opcode"], "stride": [opts["stride_h"], opts["stride_w"]],
            "padding": opts["padding"], "activation": opts["activation"],
            "dilation": [opts["dilation_h"], opts["dilation_w"]],
            "weight_shape": list(weight.shape)}


def convert_extractor(path, tensors_out, layers):
    model = tflite_reader.load_model(path)
    tensors = model["tensors"]
    pool = None
    block = 0
    for position, op in enumerate(model["operators"]):
        kind = op["opcode"]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            check_bias_scale(op["inputs"], tensors, path)
            weight = dequantize(tensors[op["inputs"][1]], path)
            bias = dequantize(tensors[op["inputs"][2]], path)
            if kind == "DEPTHWISE_CONV_2D":
                if op["options"]["depth_multiplier"] != 1:
                    raise ValueError(f"{path}: operator {position}: depth_multiplier "
                                     f"{op['options']['depth_multiplier']} unsupported")
                block += 1
                name = f"features.{block}.0"
                weight = weight[0].transpose(2, 0, 1)[:, None]      # 1,H,W,C -> C,1,H,W
            else:
                name = "features.0.0" if block == 0 else f"features.{block}.3"
                if block == 0 and f"{name}.weight" in tensors_out:
                    raise ValueError(f"{path}: operator {position}: two convs before the first "
                                     f"depthwise conv; not MobileNet-v1")
                weight = weight.transpose(0, 3, 1, 2)                # O,H,W,I -> O,I,H,W
            tensors_out[f"{name}.weight"] = np.ascontiguousarray(weight)
            tensors_out[f"{name}.bias"] = bias
            layers.append(conv_record(name, op, weight))
        elif kind == "AVERAGE_POOL_2D":
            opts = op["options"]
            pool = {"op": kind, "kernel": [opts["filter_h"], opts["filter_w"]],
                    "stride": [opts["stride_h"], opts["stride_w"]], "padding": opts["padding"],
                    "input_shape_nhwc": tensors[op["inputs"][0]]["shape"],
                    "output_shape_nhwc": tensors[op["outputs"][0]]["shape"]}
        else:
            raise ValueError(f"{path}: operator {position} is {kind}; the MobileNet-v1 importer "
                             f"only knows CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D")
    if block != 13:
        raise ValueError(f"{path}: found {block} depthwise blocks, MobileNet-v1 has 13")
    source_input = tensors[model["inputs"][0]]
    input_quant = {"dtype": source_input["type"].lower(), "shape_nhwc": source_input["shape"],
                   "scale": source_input["scale"][0], "zero_point": source_input["zero_point"][0],
                   "float_formula": "x = (q - zero_point) * scale"}
    return input_quant, pool


def convert_head(path, tensors_out, layers):
    model = tflite_reader.load_model(path)
    tensors = model["tensors"]
    ops = []
    for position, op in enumerate(model["operators"]):
        ops.append({"op": op["opcode"], **op["options"]})
        if op["opcode"] in ("CONV_2D", "FULLY_CONNECTED"):
            if "classifier.weight" in tensors_out:
                raise ValueError(f"{path}: operator {position}: second weight layer in the head")
            check_bias_scale(op["inputs"], tensors, path)
            weight = dequantize(tensors[op["inputs"][1]], path)
            if op["opcode"] == "CONV_2D":
                if weight.shape[1:3] != (1, 1):
                    raise ValueError(f"{path}: head conv kernel {list(weight.shape)} is not 1x1")
                weight = weight.reshape(weight.shape[0], weight.shape[3])  # [O,1,1,I] -> [O,I]
            tensors_out["classifier.weight"] = np.ascontiguousarray(weight)
            tensors_out["classifier.bias"] = dequantize(tensors[op["inputs"][2]], path)
            record = {"name": "classifier", "op": op["opcode"],
                      "activation": op["options"]["activation"],
                      "weight_shape": list(weight.shape)}
            layers.append(record)
        elif op["opcode"] not in ("RESHAPE", "SOFTMAX", "SQUEEZE"):
            raise ValueError(f"{path}: unexpected head operator {position}: {op['opcode']}")
    if "classifier.weight" not in tensors_out:
        raise ValueError(f"{path}: head has no CONV_2D/FULLY_CONNECTED layer")
    return ops


def print_table(tensors_out, layers):
    print(f"{'layer':<16}{'op':<19}{'weight':<22}{'stride':<8}{'pad':<7}{'act':<7}"
          f"{'|w|max':>8}{'|b|max':>9}")
    for rec in layers:
        w = tensors_out[rec["name"] + ".weight"]
        b = tensors_out[rec["name"] + ".bias"]
        stride = "x".join(map(str, rec.get("stride", ["-"])))
        print(f"{rec['name']:<16}{rec['op']:<19}{str(list(w.shape)):<22}{stride:<8}"
              f"{rec.get('padding', '-'):<7}{rec['activation']:<7}{np.abs(w).max():>8.3f}"
              f"{np.abs(b).max():>9.3f}")


def main(argv):
    args = argv[1:]
    if len(args) == 2 and os.path.isdir(args[0]):
        extractor, head = os.path.join(args[0], EXTRACTOR_FILE), os.path.join(args[0], HEAD_FILE)
    elif len(args) in (2, 3):
        extractor, head = args[0], (args[1] if len(args) == 3 else None)
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out_path = args[-1]
    tensors_out, layers = {}, []
    try:
        input_quant, pool = convert_extractor(extractor, tensors_out, layers)
        head_ops = convert_head(head, tensors_out, layers) if head else []
    except (ValueError, OSError, KeyError, IndexError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    metadata = {"format": "ember", "source": "tflite", "architecture": "mobilenet_v1_1.0_224",
                "input_quantization": json.dumps(input_quant), "layers": json.dumps(layers),
                "pool": json.dumps(pool), "head_ops": json.dumps(head_ops)}
    safetensors_io.save(out_path, tensors_out, metadata)
    print_table(tensors_out, layers)
    print(f"input: {input_quant}")
    print(f"pool: {pool}")
    print(f"head ops: {[op['op'] for op in head_ops]}")
    count = sum(v.size for v in tensors_out.values())
    print(f"{len(tensors_out)} tensors, {count} parameters -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
