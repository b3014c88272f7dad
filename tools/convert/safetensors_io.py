"""Minimal safetensors reader/writer (numpy only), written from the format spec.

Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the raw buffer.
The JSON maps tensor name -> {"dtype", "shape", "data_offsets": [begin, end]} with offsets
relative to the buffer start, plus an optional "__metadata__" {str: str}.
Tensors are row-major little-endian. We write them sorted by name and packed contiguously so
the same inputs always give byte-identical files (the self-test compares files by content).
"""
import json
import struct

import numpy as np

# safetensors dtype tag <-> numpy little-endian dtype
_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
_TAG_OF = {np.dtype(v).str: k for k, v in _DTYPES.items()}
METADATA_KEY = "__metadata__"


def _tag_for(array, path, name):
    # Normalise byte order first so big-endian input arrays map to the same tag.
    tag = _TAG_OF.get(array.dtype.newbyteorder("<").str)
    if tag is None:
        raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {array.dtype}")
    return tag


def save(path, tensors, metadata=None):
    """Write dict name -> np.ndarray to `path`. metadata values must be strings."""
    if METADATA_KEY in tensors:
        raise ValueError(f"{path}: '{METADATA_KEY}' is reserved and cannot be a tensor name")
    header = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f"{path}: metadata entry {key!r} must map str -> str")
        header[METADATA_KEY] = dict(sorted(metadata.items()))
    chunks = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        tag = _tag_for(array, path, name)
        data = np.ascontiguousarray(array, dtype=np.dtype(_DTYPES[tag])).tobytes()
        header[name] = {"dtype": tag, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad the header with spaces so the buffer starts 8-byte aligned (allowed by the spec).
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for chunk in chunks:
            f.write(chunk)


def load(path):
    """Read `path` -> (dict name -> np.ndarray, metadata dict). Validates offsets and sizes."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: file too short ({len(blob)} bytes) for a safetensors header")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise ValueError(f"{path}: header length {header_len} exceeds file size {len(blob)}")
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    buffer = memoryview(blob)[8 + header_len:]
    metadata = header.pop(METADATA_KEY, {}) or {}
    tensors = {}
    for name, info in header.items():
        tag = info["dtype"]
        if tag not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {tag}")
        dtype = np.dtype(_DTYPES[tag])
        shape = tuple(int(d) for d in info["shape"])
        begin, end = info["data_offsets"]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not (0 <= begin <= end <= len(buffer)) or end - begin != expected:
            raise ValueError(f"{path}: tensor '{name}' shape {list(shape)} {tag} needs {expected} "
                             f"bytes but data_offsets are [{begin}, {end}] "
                             f"(buffer {len(buffer)} bytes)")
        tensors[name] = np.frombuffer(buffer[begin:end], dtype=dtype).reshape(shape).copy()
    return tensors, metadata


def _main(argv):
    """CLI: `info FILE` lists tensors; `compare A B [--prefix P]` exits 1 unless every tensor of
    A (restricted to names starting with P) exists in B with the same dtype, shape and bytes."""
    if len(argv) >= 2 and argv[0] == "info":
        tensors, metadata = load(argv[1])
        for name in sorted(tensors):
            print(f"{name:<40} {str(tensors[name].dtype):<8} {list(tensors[name].shape)}")
        for key, value in metadata.items():
            print(f"__metadata__.{key} = {value[:200]}")
        return 0
    if len(argv) in (3, 5) and argv[0] == "compare":
        prefix = argv[4] if len(argv) == 5 and argv[3] == "--prefix" else ""
        a, _ = load(argv[1])
        b, _ = load(argv[2])
        names = sorted(n for n in a if n.startswith(prefix))
        problems = [n for n in names if n not in b or a[n].dtype != b[n].dtype
                    or a[n].shape != b[n].shape or not np.array_equal(a[n], b[n])]
        if not names or problems:
            print(f"compare {argv[1]} vs {argv[2]}: {len(problems)} of {len(names)} tensors "
                  f"differ or are missing: {problems[:8]}")
            return 1
        print(f"compare {argv[1]} vs {argv[2]}: {len(names)} tensors identical")
        return 0
    print("usage: safetensors_io.py info FILE | compare A B [--prefix P]")
    return 2


if __name__ == "__main__":
    import sys
    sys.exit(_main(sys.argv[1:]))
