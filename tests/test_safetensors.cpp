// safetensors: round trips, the on-disk layout, cross-checks with an independent Python (numpy +
// struct + json) implementation of the format, and every class of malformed header.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/rng.h"
#include "nn/safetensors.h"

namespace fs = std::filesystem;
using namespace ember;

namespace {

std::string make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "ember_st_XXXXXX").string();
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

struct TempDir {
  std::string path = make_temp_dir();
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}
std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char(n >> (8 * i));
  return s;
}
// A file from raw header text and buffer, bypassing ember's writer (for malformed inputs).
void write_raw(const std::string& path, const std::string& header, const std::string& buffer) {
  write_bytes(path, u64le(header.size()) + header + buffer);
}

// Bytes of a tensor's contiguous data, for exact comparisons.
std::string bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), c.nbytes());
}

// A python3 with numpy, or "" (tests that need it skip).
std::string python_with(const char* module) {
  const char* env = std::getenv("EMBER_PYTHON");
  for (std::string py : {env ? std::string(env) : std::string(), std::string("python3"), std::string("/usr/bin/python3")}) {
    if (py.empty()) continue;
    std::string cmd = py + " -c 'import " + module + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

int run_python(const std::string& py, const std::string& script_path, const std::string& args, std::string* out) {
  std::string cmd = py + " " + script_path + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  return pclose(p);
}

Tensor bf16_tensor(const std::vector<float>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape).to(DType::BFloat16);
}

std::map<std::string, Tensor> sample_tensors() {
  Generator gen(7);
  std::map<std::string, Tensor> t;
  t["f32"] = Tensor::normal({2, 3}, 0, 1, gen);
  t["f64"] = Tensor::normal({4}, 0, 1, gen, DType::Float64);
  t["i64"] = Tensor::from_vector(std::vector<int64_t>{-5, 0, 7, INT64_MAX, INT64_MIN, 42}, {3, 1, 2});
  t["bf16"] = bf16_tensor({1.5f, -2.25f, 0.0f, 1e30f, -3e-3f}, {5});
  t["scalar"] = Tensor::scalar(3.25);
  t["empty"] = Tensor::zeros({0, 3});
  t["empty_i64"] = Tensor::zeros({0}, DType::Int64);
  t["a.nested/name with spaces"] = Tensor::arange(6).view({2, 3}).t();  // non-contiguous view
  return t;
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypesAndShapes) {
  TempDir dir;
  auto src = sample_tensors();
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode ✓"}};
  save_safetensors(dir / "a.safetensors", src, meta);

  std::map<std::string, std::string> meta_back;
  auto back = load_safetensors(dir / "a.safetensors", &meta_back);
  EXPECT_EQ(meta_back, meta);
  ASSERT_EQ(back.size(), src.size());
  for (const auto& [name, t] : src) {
    ASSERT_TRUE(back.count(name)) << name;
    const Tensor& b = back.at(name);
    EXPECT_EQ(b.dtype(), t.dtype()) << name;
    EXPECT_EQ(b.shape(), t.shape()) << name;
    EXPECT_TRUE(b.is_contiguous()) << name;
    EXPECT_EQ(bytes_of(b), bytes_of(t)) << name;
  }
}

TEST(Safetensors, LayoutIsSortedAlignedAndPadded) {
  TempDir dir;
  save_safetensors(dir / "b.safetensors", sample_tensors(), {{"k", "v"}});
  std::string raw = read_bytes(dir / "b.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(raw[i]);
  EXPECT_EQ(n % 8, 0u) << "header length must keep the buffer 8-byte aligned";
  std::string header = raw.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}') << "padding must be spaces after the JSON";
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"]["k"], "v");
  // Data appear in name order, packed from offset 0 to the end of the file.
  uint64_t expect_begin = 0;
  std::string prev;
  for (const auto& [name, e] : j.items()) {
    if (name == "__metadata__") continue;
    EXPECT_LT(prev, name);
    EXPECT_EQ(e["data_offsets"][0].get<uint64_t>(), expect_begin) << name;
    expect_begin = e["data_offsets"][1].get<uint64_t>();
    prev = name;
  }
  EXPECT_EQ(8 + n + expect_begin, raw.size());
}

TEST(Safetensors, SaveOverwritesAtomicallyAndLeavesNoTempFiles) {
  TempDir dir;
  save_safetensors(dir / "c.safetensors", {{"x", Tensor::ones({3})}});
  save_safetensors(dir / "c.safetensors", {{"y", Tensor::zeros({2, 2})}});
  auto back = load_safetensors(dir / "c.safetensors");
  EXPECT_EQ(back.size(), 1u);
  EXPECT_TRUE(back.count("y"));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1) << "temporary files left behind";
  EXPECT_THROW(save_safetensors(dir / "c.safetensors", {{"__metadata__", Tensor::ones({1})}}), Error);
  EXPECT_THROW(save_safetensors(dir / "no/such/dir/c.safetensors", {{"x", Tensor::ones({1})}}), Error);
}

TEST(Safetensors, AliasedTensorsOutliveTheFileAndNeverWriteIt) {
  TempDir dir;
  Tensor src = Tensor::arange(16, DType::Float64).view({4, 4});
  // "b" (16 bytes) precedes "w" in the buffer, so "w" starts 8-byte aligned and can be aliased;
  // "x" (after "w") starts at an odd offset and must silently fall back to a copy.
  Tensor odd = Tensor::from_vector(std::vector<double>{1.5, -2.5}, {2});
  save_safetensors(dir / "d.safetensors", {{"w", src}, {"b", Tensor::ones({4})}, {"wa", Tensor::ones({1}).to(DType::BFloat16)},
                                           {"x", odd}});
  const std::string before = read_bytes(dir / "d.safetensors");
  Tensor alias;
  {
    SafetensorsFile file(dir / "d.safetensors");
    EXPECT_EQ(file.entries().size(), 4u);
    EXPECT_EQ(file.entry("w").dtype, "F64");
    alias = file.get("w", /*alias=*/true);
    // The buffer of an ember-written file is 8-byte aligned, so both aliases see the same bytes
    // while each copy gets its own.
    EXPECT_EQ(file.get("w", true).raw_data(), alias.raw_data());
    EXPECT_NE(file.get("w").raw_data(), alias.raw_data());
    EXPECT_EQ(file.get("x", true).to_vector<double>(), odd.to_vector<double>());
  }  // file object gone; the mapping must live on through the tensor
  EXPECT_EQ(bytes_of(alias), bytes_of(src));
  alias.fill_(-1.0);  // copy-on-write: the file stays as it was
  EXPECT_EQ(read_bytes(dir / "d.safetensors"), before);
  EXPECT_EQ(load_safetensors(dir / "d.safetensors").at("w").to_vector<double>(), src.to_vector<double>());
}

// ---- cross-checks with an independent Python implementation ----------------------------------

namespace {
// Writes a file with every supported dtype using only numpy/struct/json, with values from
// closed-form formulas the C++ side recomputes; or reads ember's file and checks it.
const char* kPythonScript = R"PY(
import json, struct, sys
import numpy as np

def values(n, scale, shift):
    return np.arange(n, dtype=np.float64) * scale + shift

def expected():
    e = {}
    e["f32"] = ("F32", values(6, 0.5, -1.25).astype("<f4").reshape(2, 3))
    e["f64"] = ("F64", (values(5, 1.0, 0.0) / 3.0).astype("<f8"))
    e["i64"] = ("I64", (values(4, 1e15, -2e15)).astype("<i8").reshape(2, 2))
    e["f16"] = ("F16", np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08, np.inf, -np.inf], dtype="<f2"))
    e["i32"] = ("I32", np.array([-2147483648, -1, 0, 2147483647], dtype="<i4"))
    e["u8"] = ("U8", np.array([0, 1, 127, 128, 255], dtype="u1").reshape(5, 1))
    f = values(4, -0.75, 2.0).astype("<f4")
    e["bf16"] = ("BF16", (f.view("<u4") >> 16).astype("<u2"))   # exact: the values fit in bf16
    e["scalar"] = ("F64", np.array(2.5, dtype="<f8"))
    e["empty"] = ("F32", np.zeros((0, 4), dtype="<f4"))
    return e

def write(path):
    header, chunks, off = {"__metadata__": {"writer": "python"}}, [], 0
    for name, (tag, arr) in sorted(expected().items(), key=lambda kv: kv[0]):
        data = arr.tobytes()
        header[name] = {"dtype": tag, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))

def check(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, "header not padded to 8"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    buf = raw[8 + n:]
    assert header.pop("__metadata__") == {"writer": "ember"}
    np_dtype = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "BF16": "<u2"}
    want = {"f32": values(6, 0.5, -1.25).reshape(2, 3), "f64": values(5, 1.0, 0.0) / 3.0,
            "i64": values(4, 1e15, -2e15).reshape(2, 2), "bf16": values(4, -0.75, 2.0),
            "scalar": np.array(2.5), "empty": np.zeros((0, 4))}
    assert sorted(header) == sorted(want), sorted(header)
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(buf[b:e], dtype=np_dtype[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":
            arr = (arr.astype("<u4") << 16).view("<f4")
        assert arr.shape == want[name].shape, (name, arr.shape)
        assert np.array_equal(arr.astype(np.float64), want[name]), (name, arr, want[name])
    assert e <= len(buf)
    print("python-check-ok")

if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
)PY";

std::vector<double> affine(int64_t n, double scale, double shift) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(double(i) * scale + shift);
  return v;
}
}  // namespace

TEST(Safetensors, ReadsFileWrittenByPython) {
  std::string py = python_with("numpy");
  if (py.empty()) GTEST_SKIP() << "python3 with numpy not found (set EMBER_PYTHON)";
  TempDir dir;
  write_bytes(dir / "x.py", kPythonScript);
  std::string out;
  ASSERT_EQ(run_python(py, dir / "x.py", "write " + (dir / "py.safetensors"), &out), 0) << out;

  std::map<std::string, std::string> meta;
  auto t = load_safetensors(dir / "py.safetensors", &meta);
  EXPECT_EQ(meta.at("writer"), "python");
  auto f32 = affine(6, 0.5, -1.25);
  EXPECT_EQ(t.at("f32").dtype(), DType::Float32);
  EXPECT_EQ(t.at("f32").shape(), (Shape{2, 3}));
  EXPECT_EQ(t.at("f32").to_vector<double>(), f32);
  std::vector<double> f64;
  for (double v : affine(5, 1, 0)) f64.push_back(v / 3.0);
  EXPECT_EQ(t.at("f64").to_vector<double>(), f64);
  std::vector<int64_t> i64;
  for (double v : affine(4, 1e15, -2e15)) i64.push_back(int64_t(v));
  EXPECT_EQ(t.at("i64").to_vector<int64_t>(), i64);
  // F16 converts to float32 exactly, including subnormals and infinities.
  EXPECT_EQ(t.at("f16").dtype(), DType::Float32);
  std::vector<float> f16 = t.at("f16").to_vector<float>();
  std::vector<float> want16 = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, INFINITY, -INFINITY};
  ASSERT_EQ(f16.size(), want16.size());
  for (size_t i = 0; i < f16.size(); ++i) EXPECT_EQ(f16[i], want16[i]) << i;
  EXPECT_TRUE(std::signbit(f16[1]));
  EXPECT_EQ(t.at("i32").dtype(), DType::Int64);
  EXPECT_EQ(t.at("i32").to_vector<int64_t>(), (std::vector<int64_t>{-2147483648LL, -1, 0, 2147483647}));
  EXPECT_EQ(t.at("u8").shape(), (Shape{5, 1}));
  EXPECT_EQ(t.at("u8").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 127, 128, 255}));
  EXPECT_EQ(t.at("bf16").dtype(), DType::BFloat16);
  EXPECT_EQ(t.at("bf16").to_vector<double>(), affine(4, -0.75, 2.0));
  EXPECT_EQ(t.at("scalar").shape(), Shape{});
  EXPECT_EQ(t.at("scalar").item(), 2.5);
  EXPECT_EQ(t.at("empty").shape(), (Shape{0, 4}));
}

TEST(Safetensors, PythonReadsFileWrittenByEmber) {
  std::string py = python_with("numpy");
  if (py.empty()) GTEST_SKIP() << "python3 with numpy not found (set EMBER_PYTHON)";
  TempDir dir;
  write_bytes(dir / "x.py", kPythonScript);
  std::map<std::string, Tensor> t;
  auto f32 = affine(6, 0.5, -1.25);
  t["f32"] = Tensor::from_vector(std::vector<float>(f32.begin(), f32.end()), {2, 3});
  std::vector<double> f64;
  for (double v : affine(5, 1, 0)) f64.push_back(v / 3.0);
  t["f64"] = Tensor::from_vector(f64, {5});
  std::vector<int64_t> i64;
  for (double v : affine(4, 1e15, -2e15)) i64.push_back(int64_t(v));
  t["i64"] = Tensor::from_vector(i64, {2, 2});
  auto bf = affine(4, -0.75, 2.0);
  t["bf16"] = bf16_tensor(std::vector<float>(bf.begin(), bf.end()), {4});
  t["scalar"] = Tensor::scalar(2.5, DType::Float64);
  t["empty"] = Tensor::zeros({0, 4});
  save_safetensors(dir / "ember.safetensors", t, {{"writer", "ember"}});
  std::string out;
  EXPECT_EQ(run_python(py, dir / "x.py", "check " + (dir / "ember.safetensors"), &out), 0) << out;
  EXPECT_NE(out.find("python-check-ok"), std::string::npos) << out;
}

// ---- malformed files: each must fail with an ember::Error naming file, tensor and reason ----

namespace {
// Loads `path` expecting an ember::Error whose message contains every fragment.
void expect_load_error(const std::string& path, const std::vector<std::string>& fragments) {
  try {
    load_safetensors(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
  }
}
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}
}  // namespace

TEST(SafetensorsErrors, FileAndHeaderLength) {
  TempDir dir;
  expect_load_error(dir / "missing.safetensors", {"cannot open"});
  write_bytes(dir / "short", "abc");
  expect_load_error(dir / "short", {"shorter than the 8-byte header length"});
  write_bytes(dir / "huge", u64le(1ull << 40) + "{}");
  expect_load_error(dir / "huge", {"absurdly large"});
  write_bytes(dir / "past", u64le(100) + "{}      ");
  expect_load_error(dir / "past", {"header length 100 runs past the end of the file"});
}

TEST(SafetensorsErrors, HeaderJson) {
  TempDir dir;
  write_raw(dir / "bad", "{\"a\": [1, 2", "");
  expect_load_error(dir / "bad", {"not valid JSON"});
  write_raw(dir / "array", "[1, 2]", "");
  expect_load_error(dir / "array", {"not a JSON object"});
  write_raw(dir / "dup", "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("a", "F32", "[1]", "[4,8]") + "}",
            std::string(8, '\0'));
  expect_load_error(dir / "dup", {"duplicate tensor 'a'"});
  write_raw(dir / "dupkey", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}",
            std::string(4, '\0'));
  expect_load_error(dir / "dupkey", {"duplicate key 'dtype' in 'a'"});
  write_raw(dir / "meta", "{\"__metadata__\":{\"k\":1}}", "");
  expect_load_error(dir / "meta", {"__metadata__ entry 'k'"});
  write_raw(dir / "notobj", "{\"a\": 3}", "");
  expect_load_error(dir / "notobj", {"tensor 'a'", "not a JSON object"});
}

TEST(SafetensorsErrors, DtypeAndShape) {
  TempDir dir;
  write_raw(dir / "dtype", "{" + entry("w", "F8_E4M3", "[1]", "[0,1]") + "}", std::string(1, '\0'));
  expect_load_error(dir / "dtype", {"tensor 'w'", "unknown dtype 'F8_E4M3'"});
  write_raw(dir / "neg", "{" + entry("w", "F32", "[2,-1]", "[0,0]") + "}", "");
  expect_load_error(dir / "neg", {"tensor 'w'", "-1 is negative"});
  write_raw(dir / "float", "{" + entry("w", "F32", "[2.5]", "[0,0]") + "}", "");
  expect_load_error(dir / "float", {"tensor 'w'", "not an integer"});
  write_raw(dir / "overflow", "{" + entry("w", "F32", "[4611686018427387904,4611686018427387904]", "[0,0]") + "}", "");
  expect_load_error(dir / "overflow", {"tensor 'w'", "overflows"});
  write_raw(dir / "overflow_bytes", "{" + entry("w", "F64", "[4611686018427387904]", "[0,0]") + "}", "");
  expect_load_error(dir / "overflow_bytes", {"tensor 'w'", "overflows"});
}

TEST(SafetensorsErrors, DataOffsets) {
  TempDir dir;
  const std::string buf8(8, '\0');
  write_raw(dir / "one", "{" + entry("w", "F32", "[1]", "[0]") + "}", buf8);
  expect_load_error(dir / "one", {"tensor 'w'", "not a pair of integers"});
  write_raw(dir / "str", "{" + entry("w", "F32", "[1]", "[\"0\",4]") + "}", buf8);
  expect_load_error(dir / "str", {"tensor 'w'", "not a non-negative integer"});
  write_raw(dir / "neg", "{" + entry("w", "F32", "[1]", "[-4,0]") + "}", buf8);
  expect_load_error(dir / "neg", {"tensor 'w'", "not a non-negative integer"});
  write_raw(dir / "backwards", "{" + entry("w", "F32", "[1]", "[8,4]") + "}", buf8);
  expect_load_error(dir / "backwards", {"tensor 'w'", "end before begin"});
  write_raw(dir / "past", "{" + entry("w", "F32", "[4]", "[0,16]") + "}", buf8);
  expect_load_error(dir / "past", {"tensor 'w'", "run past the data buffer"});
  write_raw(dir / "size", "{" + entry("w", "F32", "[3]", "[0,8]") + "}", buf8);
  expect_load_error(dir / "size", {"tensor 'w'", "span 8 bytes", "needs 12"});
  write_raw(dir / "overlap", "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[1]", "[4,8]") + "}", buf8);
  expect_load_error(dir / "overlap", {"tensor 'b'", "overlap tensor 'a'"});
  write_raw(dir / "gap", "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[0]", "[6,6]") + "}", buf8);
  expect_load_error(dir / "gap", {"tensor 'b'", "gap of 2 unused bytes"});
  write_raw(dir / "trailing", "{" + entry("a", "F32", "[1]", "[0,4]") + "}", buf8);
  expect_load_error(dir / "trailing", {"4 trailing bytes not covered"});
}

TEST(SafetensorsErrors, EveryTruncationFailsCleanly) {
  TempDir dir;
  save_safetensors(dir / "full", sample_tensors(), {{"k", "v"}});
  const std::string raw = read_bytes(dir / "full");
  for (size_t len = 0; len < raw.size(); ++len) {
    write_bytes(dir / "cut", raw.substr(0, len));
    EXPECT_THROW(load_safetensors(dir / "cut"), Error) << "truncated to " << len << " of " << raw.size();
  }
}

TEST(SafetensorsErrors, UnknownTensorName) {
  TempDir dir;
  save_safetensors(dir / "f", {{"w", Tensor::ones({2})}});
  SafetensorsFile file(dir / "f");
  EXPECT_FALSE(file.contains("v"));
  try {
    file.get("v");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor named 'v'"), std::string::npos) << e.what();
  }
}
