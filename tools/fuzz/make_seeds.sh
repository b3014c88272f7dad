#!/usr/bin/env bash
# Writes small, VALID seed inputs for every libFuzzer target into OUT/<target>/ (default
# build-fuzz/seeds). Seeds are generated, never committed: the fuzzer mutates them into the bad
# inputs. The committed bad-input corpus (tests/corpus/) is added too, so every known-bad shape
# is a starting point. Uses Debian's python (PIL, numpy); reads a few file names and two small
# JPEGs from ../shared when it is there (read-only, copied only into the build dir).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$repo/build-fuzz/seeds}"
mkdir -p "$out"
/usr/bin/python3 - "$repo" "$out" <<'PY'
import io, json, os, struct, sys, glob
import numpy as np
from PIL import Image

repo, out = sys.argv[1], sys.argv[2]
def put(target, name, data):
    d = os.path.join(out, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def safetensors(tensors, metadata=None):
    """tensors: list of (name, tag, shape, raw bytes)."""
    header, buf = {}, b""
    for name, tag, shape, raw in tensors:
        header[name] = {"dtype": tag, "shape": shape, "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    if metadata: header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + buf

f32 = lambda a: np.asarray(a, np.float32).tobytes()
put("fuzz_safetensors", "f32.safetensors", safetensors([("w", "F32", [2, 3], f32(range(6)))]))
put("fuzz_safetensors", "mixed.safetensors", safetensors([
    ("a", "F64", [2], np.array([1.5, -2], np.float64).tobytes()),
    ("b", "I64", [3], np.array([1, 2, 3], np.int64).tobytes()),
    ("c", "BF16", [2], b"\x80\x3f\x00\x40"),
    ("d", "F16", [2], np.array([1, 2], np.float16).tobytes()),
    ("e", "U8", [4], bytes([0, 1, 2, 255])),
    ("f", "I32", [1], np.array([-7], np.int32).tobytes()),
    ("s", "F32", [], f32([3]))], {"format": "pt"}))
put("fuzz_safetensors", "empty.safetensors", safetensors([]))

ckpt_meta = {"ember.format": "ember.checkpoint.v1", "epoch": "3", "step": "120",
             "rng": json.dumps({"shuffle": {"seed": 7, "offset": 64}}),
             "optim": json.dumps({"lr": 0.001, "step": 120}), "config": json.dumps({"epochs": 5}),
             "user.note": "seed"}
put("fuzz_checkpoint", "ckpt.safetensors", safetensors([
    ("model.fc.weight", "F32", [2, 2], f32([1, 2, 3, 4])), ("model.fc.bias", "F32", [2], f32([0, 1])),
    ("optim.exp_avg.fc.weight", "F32", [2, 2], f32([0, 0, 0, 0]))], ckpt_meta))
put("fuzz_checkpoint", "minimal.safetensors", safetensors([], {"ember.format": "ember.checkpoint.v1",
    "epoch": "0", "step": "0", "rng": "{}"}))

put("fuzz_csv", "simple.csv", "id,age,sex\n1,30,F\n2,,M\n")
put("fuzz_csv", "quoted.csv", 'a,"b,c",d\r\n"x ""y""","multi\nline",3\r\n')
put("fuzz_csv", "bom.csv", "\ufeffimage_id,dx,age\nISIC_1,nv,45.0\n".encode())
labels = "/work/shared/data/utkface/labels.csv"
if os.path.exists(labels):
    with open(labels, "rb") as f: put("fuzz_csv", "utk_head.csv", b"".join(f.readlines()[:12]))

for p in glob.glob(os.path.join(repo, "experiments/datasets/*.json")):
    put("fuzz_dataset_config", os.path.basename(p), open(p, "rb").read())
for p in glob.glob(os.path.join(repo, "experiments/*.json")):
    put("fuzz_experiment_config", os.path.basename(p), open(p, "rb").read())
put("fuzz_experiment_config", "minimal.json", '{"dataset": "synthetic"}')

rng = np.random.default_rng(0)
for fmt, ext in [("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp")]:
    for mode, size in [("RGB", (5, 7)), ("L", (4, 4)), ("RGBA", (3, 2))]:
        if fmt == "JPEG" and mode == "RGBA": continue
        arr = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8).squeeze()
        b = io.BytesIO(); Image.fromarray(arr, mode).save(b, fmt); put("fuzz_image", f"{mode}.{ext}", b.getvalue())
b = io.BytesIO(); Image.new("RGB", (16, 16), (200, 10, 10)).save(b, "JPEG", progressive=True)
put("fuzz_image", "progressive.jpg", b.getvalue())

names = ["25_0_2_20170116174525125.jpg", "1_1_0_20161219140623097.jpg.chip.jpg", "id-7__x.y.png",
         "61_1_20170109142408075.jpg", "39_1_20170116174525125.jpg.chip.jpg"]
img_dir = "/work/shared/data/utkface/images"
if os.path.isdir(img_dir):
    listing = sorted(os.listdir(img_dir))
    names += listing[::max(1, len(listing) // 40)]
for i, n in enumerate(names): put("fuzz_filename_pattern", f"name{i}", n)
PY
# The committed bad inputs are seeds too (they sit just past the valid shapes).
corpus="$repo/tests/corpus"
declare -A dirs=([fuzz_safetensors]=safetensors [fuzz_checkpoint]=checkpoint [fuzz_csv]=csv
                 [fuzz_image]=image [fuzz_dataset_config]=dataset_config
                 [fuzz_experiment_config]=experiment_config [fuzz_filename_pattern]=filename)
for t in "${!dirs[@]}"; do
  for d in "$corpus/${dirs[$t]}" "$corpus/regressions/$t"; do
    [ -d "$d" ] && find "$d" -maxdepth 1 -type f -exec cp {} "$out/$t/" \;
  done
done
echo "seeds in $out: $(find "$out" -type f | wc -l) files"
