"""Read a TFLite model (a FlatBuffer) with `struct` only: no flatbuffers package, no schema code.

FlatBuffer rules used here (from the FlatBuffers binary-format docs):
  * the file starts with a u32 offset to the root table (then the 4-byte identifier "TFL3");
  * a table starts with an i32 `soffset`; its vtable lives at table_pos - soffset and holds
    u16 vtable size, u16 table size, then one u16 per field: the field's offset inside the
    table, 0 when the field is absent (the schema default applies);
  * strings, vectors and sub-tables are stored as u32 offsets relative to where the offset
    itself sits; a vector/string begins with a u32 element count.
Field numbers follow tensorflow/lite/schema/schema.fbs; a union takes two slots (type, value).
"""
import struct

import numpy as np

TENSOR_TYPES = {0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 5: "STRING",
                6: "BOOL", 7: "INT16", 8: "COMPLEX64", 9: "INT8"}
NUMPY_OF_TYPE = {"FLOAT32": "<f4", "FLOAT16": "<f2", "INT32": "<i4", "UINT8": "u1",
                 "INT64": "<i8", "INT16": "<i2", "INT8": "i1", "BOOL": "?"}
BUILTIN_OPS = {0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D",
               4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC",
               17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 21: "RELU6", 22: "RESHAPE",
               25: "SOFTMAX", 34: "PAD", 40: "MEAN", 43: "SQUEEZE", 114: "QUANTIZE"}
PADDINGS = {0: "SAME", 1: "VALID"}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


class Table:
    """A view of one FlatBuffer table: typed accessors by field number."""

    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        vt_size = struct.unpack_from("<H", buf, vtable)[0]
        count = (vt_size - 4) // 2
        self.fields = struct.unpack_from(f"<{count}H", buf, vtable + 4)

    def _at(self, field):
        off = self.fields[field] if field < len(self.fields) else 0
        return self.pos + off if off else None

    def scalar(self, field, fmt, default=0):
        at = self._at(field)
        return default if at is None else struct.unpack_from("<" + fmt, self.buf, at)[0]

    def _indirect(self, field):
        at = self._at(field)
        return None if at is None else at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, field):
        at = self._indirect(field)
        return None if at is None else Table(self.buf, at)

    def string(self, field):
        at = self._indirect(field)
        if at is None:
            return ""
        n = struct.unpack_from("<I", self.buf, at)[0]
        return bytes(self.buf[at + 4:at + 4 + n]).decode("utf-8", "replace")

    def vector(self, field, dtype):
        """Vector of scalars as a numpy array (empty if absent); dtype like '<i4' or 'u1'."""
        at = self._indirect(field)
        if at is None:
            return np.zeros(0, dtype=dtype)
        n = struct.unpack_from("<I", self.buf, at)[0]
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=at + 4)

    def tables(self, field):
        at = self._indirect(field)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        slots = [at + 4 + 4 * i for i in range(n)]
        return [Table(self.buf, s + struct.unpack_from("<I", self.buf, s)[0]) for s in slots]


def read_options(opcode, table):
    """Decode the builtin_options table of the ops MobileNet uses into a plain dict."""
    if table is None:
        return {}
    if opcode == "CONV_2D":
        return {"padding": PADDINGS[table.scalar(0, "b")], "stride_w": table.scalar(1, "i"),
                "stride_h": table.scalar(2, "i"),
                "activation": ACTIVATIONS[table.scalar(3, "b")],
                "dilation_w": table.scalar(4, "i", 1), "dilation_h": table.scalar(5, "i", 1)}
    if opcode == "DEPTHWISE_CONV_2D":
        return {"padding": PADDINGS[table.scalar(0, "b")], "stride_w": table.scalar(1, "i"),
                "stride_h": table.scalar(2, "i"), "depth_multiplier": table.scalar(3, "i"),
                "activation": ACTIVATIONS[table.scalar(4, "b")],
                "dilation_w": table.scalar(5, "i", 1), "dilation_h": table.scalar(6, "i", 1)}
    if opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return {"padding": PADDINGS[table.scalar(0, "b")], "stride_w": table.scalar(1, "i"),
                "stride_h": table.scalar(2, "i"), "filter_w": table.scalar(3, "i"),
                "filter_h": table.scalar(4, "i"),
                "activation": ACTIVATIONS[table.scalar(5, "b")]}
    if opcode == "FULLY_CONNECTED":
        return {"activation": ACTIVATIONS[table.scalar(0, "b")],
                "weights_format": table.scalar(1, "b"), "keep_num_dims": bool(table.scalar(2, "b"))}
    if opcode == "SOFTMAX":
        return {"beta": table.scalar(0, "f")}
    if opcode == "RESHAPE":
        return {"new_shape": table.vector(0, "<i4").tolist()}
    return {}


def load_model(path):
    """Parse `path` into plain dicts: {"version", "description", "tensors", "operators",
    "inputs", "outputs"} for subgraph 0. Tensor "data" is a numpy array (None if no buffer)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite flatbuffer (identifier {buf[4:8]!r}, want b'TFL3')")
    model = Table(buf, struct.unpack_from("<I", buf, 0)[0])
    buffers = [b.vector(0, "u1") for b in model.tables(4)]
    codes = []
    for code in model.tables(1):
        # Newer files keep small codes in the deprecated i8 field and large ones in field 3.
        value = max(code.scalar(0, "b"), code.scalar(3, "i"))
        codes.append(BUILTIN_OPS.get(value, f"BUILTIN_{value}") if value != 32
                     else "CUSTOM:" + code.string(1))
    subgraphs = model.tables(2)
    if len(subgraphs) != 1:
        raise ValueError(f"{path}: expected 1 subgraph, found {len(subgraphs)}")
    graph = subgraphs[0]
    tensors = []
    for index, t in enumerate(graph.tables(0)):
        kind = TENSOR_TYPES.get(t.scalar(1, "b"), f"TYPE_{t.scalar(1, 'b')}")
        shape = t.vector(0, "<i4").tolist()
        quant = t.table(4)
        scale = quant.vector(2, "<f4").tolist() if quant else []
        zero_point = quant.vector(3, "<i8").tolist() if quant else []
        raw = buffers[t.scalar(2, "I")] if t.scalar(2, "I") < len(buffers) else np.zeros(0, "u1")
        data = None
        if raw.size:
            dtype = np.dtype(NUMPY_OF_TYPE[kind])
            if raw.size != int(np.prod(shape)) * dtype.itemsize:
                raise ValueError(f"{path}: tensor {index} '{t.string(3)}' shape {shape} {kind} "
                                 f"needs {int(np.prod(shape)) * dtype.itemsize} bytes, buffer "
                                 f"has {raw.size}")
            data = raw.view(dtype).reshape(shape)
        tensors.append({"index": index, "name": t.string(3), "shape": shape, "type": kind,
                        "scale": scale, "zero_point": zero_point,
                        "quantized_dimension": quant.scalar(6, "i") if quant else 0,
                        "data": data})
    operators = []
    for op in graph.tables(3):
        opcode = codes[op.scalar(0, "I")]
        operators.append({"opcode": opcode, "inputs": op.vector(1, "<i4").tolist(),
                          "outputs": op.vector(2, "<i4").tolist(),
                          "options": read_options(opcode, op.table(4))})
    return {"version": model.scalar(0, "I"), "description": model.string(3),
            "tensors": tensors, "operators": operators,
            "inputs": graph.vector(1, "<i4").tolist(), "outputs": graph.vector(2, "<i4").tolist()}
