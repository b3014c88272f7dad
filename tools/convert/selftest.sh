#!/usr/bin/env bash
# End-to-end self-test of ember's weight converters. Exit 0 = all checks passed, 1 = a failure.
#
#   tools/convert/selftest.sh [MOBILENET_DIR]
#
# Needs python3 with numpy; torch for the VGG part, h5py for the Keras part (missing optional
# modules skip that part with a SKIP line, or fail if EMBER_SELFTEST_STRICT=1). MobileNet is
# checked against MOBILENET_DIR (default ../shared/models/mobilenet_v1_224_quant from the repo root).
# VGG uses the real conv stack but a 256-wide classifier (21M instead of 138M parameters) so the
# test moves ~90 MB files, not 553 MB ones; EMBER_SELFTEST_FULL=1 uses the real 4096 width
# (about 3.5 GB at peak, minutes on a slow disk). Files go to a temporary directory removed on
# exit (TMPDIR picks its parent). PYTHON overrides the interpreter.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
GOLDEN="$ROOT/tools/golden"
MOBILENET_DIR="${1:-$ROOT/../shared/models/mobilenet_v1_224_quant}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ember_convert_selftest.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
FAILED=0
export PYTHONDONTWRITEBYTECODE=1  # keep __pycache__ out of the source tree
HIDDEN=256; [ "${EMBER_SELFTEST_FULL:-0}" = 1 ] && HIDDEN=4096

# Debian's numpy/torch/h5py live in the system interpreter; a pyenv/venv python3 may lack them.
pick_python() {
  for candidate in "${PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$candidate" ] && "$candidate" -c 'import numpy' 2>/dev/null && { echo "$candidate"; return; }
  done
}
PY="$(pick_python)"
[ -n "$PY" ] || { echo "FAIL: no python3 with numpy found (set PYTHON)"; exit 1; }
has() { "$PY" -c "import $1" 2>/dev/null; }
pass() { echo "PASS: $1 (${SECONDS}s)"; }
fail() { echo "FAIL: $1"; FAILED=1; }
skip() {
  if [ "${EMBER_SELFTEST_STRICT:-0}" = 1 ]; then fail "$1 (strict mode)"; else echo "SKIP: $1"; fi
}
run() {  # run NAME CMD...: PASS if the command exits 0, else FAIL with its output
  local name="$1" log; shift
  if log="$("$@" 2>&1)"; then pass "$name"; else fail "$name"; echo "$log" | tail -20; fi
}
expect_error() {  # expect_error NAME PATTERN CMD...: command must exit 1 and print PATTERN
  local name="$1" pattern="$2" log rc; shift 2
  log="$("$@" 2>&1)"; rc=$?
  if [ $rc -eq 1 ] && grep -q -- "$pattern" <<<"$log"; then pass "$name"
  else fail "$name (rc=$rc)"; echo "$log" | tail -5; fi
}
ST="$PY $HERE/safetensors_io.py"

# --- 1. safetensors reader/writer --------------------------------------------------------------
run "safetensors round trip, dtypes, metadata, corrupt-file errors" "$PY" - "$HERE" "$WORK" <<'PYEOF'
import struct, sys
sys.path.insert(0, sys.argv[1]); import numpy as np, safetensors_io as st
path = sys.argv[2] + "/t.safetensors"
t = {"z": np.arange(12, dtype=np.float32).reshape(3, 4), "a": np.array([1, -2], dtype=">i8"),
     "m": np.array([[True], [False]]), "e": np.zeros((0, 5), np.float32), "h": np.ones(3, np.float16)}
st.save(path, t, {"k": "v"})
r, meta = st.load(path)
assert meta == {"k": "v"}, meta
assert sorted(r) == sorted(t) and all(np.array_equal(r[k], t[k]) and r[k].shape == t[k].shape for k in t)
blob = open(path, "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
assert (8 + n) % 8 == 0
import json; header = json.loads(blob[8:8 + n])
offs = [header[k]["data_offsets"] for k in sorted(t)]   # sorted by name and packed contiguously
assert offs[0][0] == 0 and all(a[1] == b[0] for a, b in zip(offs, offs[1:])) and offs[-1][1] == len(blob) - 8 - n
open(path, "wb").write(blob[:-4])
try: st.load(path); raise SystemExit("truncated file was accepted")
except ValueError as e: assert "data_offsets" in str(e), e
PYEOF

# --- 2. torchvision VGG16 / VGG16-BN -----------------------------------------------------------
# forward_check PTH SAFETENSORS GOLDEN: load the converted file into a torch VGG and reproduce the
# golden output; also check it equals the .pth tensor for tensor (minus num_batches_tracked).
cat > "$WORK/forward_check.py" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import torch, safetensors_io as st
from make_vgg_golden import VGG
pth, converted, golden = sys.argv[3:6]
tensors, meta = st.load(converted)
state = torch.load(pth, map_location="cpu")
kept = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
assert sorted(kept) == sorted(tensors), set(kept) ^ set(tensors)
assert all(torch.equal(kept[k], torch.from_numpy(tensors[k])) for k in kept)
model = VGG(batch_norm=meta["architecture"] == "vgg16_bn",
            hidden=int(meta["classifier_hidden"])).eval()
missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
g, _ = st.load(golden)
with torch.no_grad():
    y = model(torch.from_numpy(g["input"])).numpy()
err = abs(y - g["output"]).max()
assert err <= 1e-4 * max(1.0, abs(g["output"]).max()), err
print(meta["architecture"], len(tensors), "tensors, max |output - golden|", err)
if len(sys.argv) > 6:  # also write a state_dict with one renamed key, for the rejection test
    state["features.3.weight"] = state.pop("features.2.weight")
    torch.save(state, sys.argv[6])
PYEOF

if has torch; then
  for variant in vgg16 vgg16_bn; do
    flag=""; bad="$WORK/bad.pth"; [ $variant = vgg16_bn ] && { flag="--bn"; bad=""; }
    if "$PY" "$GOLDEN/make_vgg_golden.py" "$WORK" $flag --hidden $HIDDEN >/dev/null; then
      run "$variant: torchvision .pth -> safetensors" \
        "$PY" "$HERE/torchvision_vgg.py" "$WORK/$variant.pth" "$WORK/$variant.safetensors"
      run "$variant: converted tensors == .pth and reproduce the PyTorch golden output" \
        "$PY" "$WORK/forward_check.py" "$HERE" "$GOLDEN" "$WORK/$variant.pth" \
        "$WORK/$variant.safetensors" "$WORK/${variant}_golden.safetensors" $bad
    else
      fail "$variant: make_vgg_golden.py"
    fi
  done
  rm -f "$WORK/vgg16_bn.pth" "$WORK/vgg16_bn.safetensors"
  # A state_dict with a renamed key (written by forward_check.py) must be rejected by name.
  expect_error "vgg16: wrong key set is rejected" "features.2.weight" \
    "$PY" "$HERE/torchvision_vgg.py" "$WORK/bad.pth" "$WORK/bad.safetensors"
  rm -f "$WORK/bad.pth"
else
  skip "VGG16 torchvision checks (python module torch missing)"
fi

# --- 3. Keras VGG16 .h5 ------------------------------------------------------------------------
if has torch && has h5py && [ -f "$WORK/vgg16.safetensors" ]; then
  run "keras: write Keras-layout .h5 files from the .pth" \
    "$PY" "$GOLDEN/make_keras_vgg_h5.py" "$WORK/vgg16.pth" "$WORK"
  rm -f "$WORK/vgg16.pth"
  for layout in model weights weights_notop; do
    h5="$WORK/vgg16_keras_$layout.h5"; out="$WORK/keras_$layout.safetensors"
    run "keras $layout.h5 -> safetensors" "$PY" "$HERE/keras_vgg.py" "$h5" "$out"
    run "keras $layout: features identical to the torchvision conversion" \
      $ST compare "$WORK/vgg16.safetensors" "$out" --prefix features.
    [ $layout = weights_notop ] || run "keras $layout: classifier identical too" \
      $ST compare "$WORK/vgg16.safetensors" "$out" --prefix classifier.
  done
  # Independent of make_keras_vgg_h5.py: evaluate conv and fc1 the Keras way (NHWC, HWIO,
  # channels-last flatten) straight from the .h5 and compare with the NCHW result of the
  # converted weights, so a mistake made symmetrically in writer and converter is still caught.
  run "keras semantics: NHWC conv / HWC flatten == converted NCHW conv / CHW flatten" \
    "$PY" - "$HERE" "$WORK/vgg16_keras_model.h5" "$WORK/keras_model.safetensors" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1]); import numpy as np, h5py, safetensors_io as st
f = h5py.File(sys.argv[2], "r")["model_weights"]
w, _ = st.load(sys.argv[3])
rng = np.random.default_rng(0)
feat = rng.standard_normal((7, 7, 512))                      # Keras block5_pool output, HWC
k, b = f["fc1/fc1/kernel:0"][:].astype(np.float64), f["fc1/fc1/bias:0"][:]
keras = feat.reshape(-1) @ k + b                            # Flatten on channels-last
ember = w["classifier.0.weight"].astype(np.float64) @ feat.transpose(2, 0, 1).reshape(-1) + w["classifier.0.bias"]
assert np.allclose(keras, ember, rtol=1e-6, atol=1e-6), abs(keras - ember).max()
x = rng.standard_normal((6, 5, 64))                          # HWC input to block1_conv2
k = f["block1_conv2/block1_conv2/kernel:0"][:].astype(np.float64)   # H, W, I, O
xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
keras = sum(np.einsum("hwc,co->hwo", xp[i:i + 6, j:j + 5], k[i, j]) for i in range(3) for j in range(3))
xp = np.pad(x.transpose(2, 0, 1), ((0, 0), (1, 1), (1, 1)))  # NCHW path with OIHW weights
wt = w["features.2.weight"].astype(np.float64)
ember = sum(np.einsum("chw,oc->ohw", xp[:, i:i + 6, j:j + 5], wt[:, :, i, j]) for i in range(3) for j in range(3))
assert np.allclose(keras, ember.transpose(1, 2, 0), rtol=1e-6, atol=1e-6), abs(keras - ember.transpose(1, 2, 0)).max()
PYEOF
  "$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'a'); del f['model_weights/fc2']" "$WORK/vgg16_keras_model.h5"
  expect_error "keras: partial classifier is rejected" "partial classifier" \
    "$PY" "$HERE/keras_vgg.py" "$WORK/vgg16_keras_model.h5" "$WORK/bad.safetensors"
else
  skip "Keras VGG16 checks (need torch and h5py, and the VGG16 conversion above)"
fi
rm -f "$WORK"/*.h5 "$WORK"/keras_*.safetensors "$WORK"/vgg16*

# --- 4. TFLite MobileNet-v1 --------------------------------------------------------------------
if [ -f "$MOBILENET_DIR/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite" ]; then
  run "mobilenet: tflite -> safetensors" \
    "$PY" "$HERE/tflite_mobilenet.py" "$MOBILENET_DIR" "$WORK/mobilenet_v1.safetensors"
  run "mobilenet: tensor names and shapes" "$PY" - "$HERE" "$WORK/mobilenet_v1.safetensors" <<'PYEOF'
import sys, json
sys.path.insert(0, sys.argv[1]); import safetensors_io as st
w, meta = st.load(sys.argv[2])
chans = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
want = {"features.0.0.weight": (32, 3, 3, 3), "classifier.weight": (1001, 1024), "classifier.bias": (1001,)}
for i in range(1, 14):
    want[f"features.{i}.0.weight"] = (chans[i - 1], 1, 3, 3)
    want[f"features.{i}.3.weight"] = (chans[i], chans[i - 1], 1, 1)
for name, shape in want.items():
    assert w[name].shape == shape and w[name].dtype.str == "<f4", (name, w[name].shape)
assert len(w) == 56, len(w)
assert json.loads(meta["input_quantization"])["zero_point"] == 128
assert [l["stride"][0] for l in json.loads(meta["layers"]) if l["op"] == "DEPTHWISE_CONV_2D"] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
PYEOF
  run "mobilenet: numpy float forward gives the reference top-1 labels" \
    "$PY" "$HERE/mobilenet_reference.py" "$WORK/mobilenet_v1.safetensors" "$MOBILENET_DIR" \
    --golden "$WORK/mobilenet_golden.safetensors"
  # Top-1 alone also passes with symmetric padding, so check the numpy logits against an
  # independent float64 torch forward that pads the TF 'SAME' way explicitly.
  if has torch; then
    run "mobilenet: numpy logits == torch float64 forward with TF SAME padding" \
      "$PY" - "$HERE" "$WORK/mobilenet_v1.safetensors" "$WORK/mobilenet_golden.safetensors" <<'PYEOF'
import sys, json
sys.path.insert(0, sys.argv[1]); import numpy as np, torch, torch.nn.functional as F, safetensors_io as st
w, meta = st.load(sys.argv[2]); g, _ = st.load(sys.argv[3])
t = {k: torch.from_numpy(v).double() for k, v in w.items()}
for stem in ("cat", "bird", "grace_hopper"):
    x = torch.from_numpy(g[stem + ".input"]).double()
    for layer in json.loads(meta["layers"])[:-1]:
        weight, stride = t[layer["name"] + ".weight"], layer["stride"][0]
        size, k = x.shape[-1], weight.shape[-1]
        total = max((-(-size // stride) - 1) * stride + k - size, 0)
        x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
        groups = weight.shape[0] if layer["op"] == "DEPTHWISE_CONV_2D" else 1
        x = F.conv2d(x, weight, t[layer["name"] + ".bias"], stride=stride, groups=groups).clamp(0, 6)
    logits = x.mean((2, 3)) @ t["classifier.weight"].T + t["classifier.bias"]
    err = (logits.numpy() - g[stem + ".logits"]).__abs__().max()
    assert err < 1e-3, (stem, err)
PYEOF
  fi
else
  skip "MobileNet checks (no $MOBILENET_DIR)"
fi

if [ $FAILED -eq 0 ]; then echo "selftest: all checks passed"; else echo "selftest: FAILED"; fi
exit $FAILED
