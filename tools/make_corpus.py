#!/usr/bin/python3
"""Writes tests/corpus/: small BAD inputs (plus a few valid controls) for every reader ember has.

Run with Debian's python (numpy + PIL):  /usr/bin/python3 tools/make_corpus.py
The output is committed; tests/test_corpus_replay.cpp holds the expected outcome of every file
and fails when a file here has no expectation, so adding a case means adding a row there too.
Everything is deterministic (fixed seeds, fixed byte positions) and each file stays under ~4 KiB.

  image/           decode_image + resize (the loader's entry point) and check_image_file
  csv/             read_csv
  safetensors/     SafetensorsFile + get() of every tensor
  checkpoint/      load_checkpoint
  dataset_config/  parse_dataset_config (base dir = that folder)
  experiment/      parse_experiment
  filename/        FilenamePattern("<age>_<gender>_<race>_<datetime>").parse(file contents)
  dataset/<case>/  load_dataset(<case>/dataset.json): numeric cells, bad images, skip_bad, escapes
  regressions/<fuzz target>/  inputs the fuzzers found (written by hand, never by this script)
"""
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "corpus")


def put(rel, data):
    path = os.path.join(ROOT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def png_bytes(arr):
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    return b.getvalue()


def jpeg_bytes(arr):
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "JPEG", quality=90)
    return b.getvalue()


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_declaring(width, height):
    """A well-formed PNG whose IHDR claims width x height RGB but whose data is a few bytes: a
    decoder that trusts the header allocates width*height*3 before noticing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def flip(data, pos, mask=0xFF):
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def images():
    rng = np.random.default_rng(11)
    arr = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    png, jpg = png_bytes(arr), jpeg_bytes(arr)
    put("image/ok.png", png)
    put("image/ok.jpg", jpg)
    put("image/truncated.jpg", jpg[: len(jpg) // 2])           # no end-of-image marker
    put("image/truncated.png", png[: len(png) // 2])           # IDAT cut short, no IEND
    put("image/truncated_header.png", png[:20])                 # inside the IHDR chunk
    sof = jpg.index(b"\xff\xc0")                                # baseline start-of-frame
    put("image/bitflip_jpeg_precision.jpg", flip(jpg, sof + 4, 0x04))  # 8-bit -> 12-bit samples
    put("image/bitflip_jpeg_soi.jpg", flip(jpg, 1, 0x01))       # FFD8 -> FFD9: not a JPEG at all
    idat = png.index(b"IDAT")
    put("image/bitflip_png_idat.png", flip(png, idat + 4, 0xFF))  # zlib header of the pixel data
    put("image/bitflip_png_signature.png", flip(png, 1, 0x20))  # "PNG" -> "pNG"
    put("image/bomb.png", png_declaring(10000, 10000))          # 100 M pixels declared, 80 bytes
    put("image/bomb_beyond_stb.png", png_declaring(60000, 60000))  # 3.6 G: stb's own cap refuses it
    put("image/zero_byte.jpg", b"")
    put("image/text.jpg", "this is not an image\n")


def csvs():
    put("csv/ok.csv", "id,age,sex\n1,30,F\n2,41,M\n")
    put("csv/unbalanced_quote.csv", 'id,note\n1,"never closed\n2,fine\n')
    put("csv/stray_quote.csv", 'id,note\n1,ab"c\n')
    put("csv/after_quote.csv", 'id,note\n1,"ab"c\n')
    put("csv/ragged_short.csv", "id,age,sex\n1,30,F\n2,41\n")
    put("csv/ragged_long.csv", "id,age,sex\n1,30,F,extra\n")
    put("csv/bom.csv", b"\xef\xbb\xbfid,age\n1,30\n")
    put("csv/bom_only.csv", b"\xef\xbb\xbf")
    put("csv/crlf.csv", b"id,age\r\n1,30\r\n2,\"a\r\nb\"\r\n")
    put("csv/non_utf8.csv", b"id,name\n1,caf\xe9\n2,\xff\xfe\x80\n")
    put("csv/nul_bytes.csv", b"id,name\n1,a\x00b\n")
    put("csv/zero_byte.csv", b"")
    put("csv/nan_inf_empty.csv", "id,x\n1,NaN\n2,inf\n3,\n4,-Infinity\n5,1e999\n")


def safetensors_file(header, buf=b"", header_len=None, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    n = len(h) if header_len is None else header_len
    return struct.pack("<Q", n) + h + buf


def safetensors():
    f32 = np.arange(6, dtype=np.float32).tobytes()  # 24 bytes
    ok = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}
    put("safetensors/ok.safetensors", safetensors_file(ok, f32))
    put("safetensors/lying_offsets.safetensors",
        safetensors_file({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 4096]}}, f32))
    put("safetensors/offsets_reversed.safetensors",
        safetensors_file({"w": {"dtype": "F32", "shape": [0], "data_offsets": [24, 0]}}, f32))
    put("safetensors/offset_overflow.safetensors",
        safetensors_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [18446744073709551608, 0]}}, f32))
    put("safetensors/size_mismatch.safetensors",
        safetensors_file({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 24]}}, f32))
    put("safetensors/overlapping.safetensors", safetensors_file({
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, f32))
    put("safetensors/gap.safetensors", safetensors_file({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}, f32))
    put("safetensors/header_past_file.safetensors", safetensors_file(ok, f32, header_len=4096))
    put("safetensors/header_absurd.safetensors", safetensors_file(ok, f32, header_len=1 << 62))
    put("safetensors/unknown_dtype.safetensors",
        safetensors_file({"w": {"dtype": "Q7", "shape": [6], "data_offsets": [0, 24]}}, f32))
    dup = (b'{"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},'
           b'"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}')
    put("safetensors/duplicate_names.safetensors", safetensors_file(None, f32, raw_header=dup))
    put("safetensors/negative_shape.safetensors",
        safetensors_file({"w": {"dtype": "F32", "shape": [-2, -3], "data_offsets": [0, 24]}}, f32))
    put("safetensors/shape_overflow.safetensors", safetensors_file(
        {"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 24]}}, f32))
    put("safetensors/not_json.safetensors", safetensors_file(None, f32, raw_header=b"{not json at all"))
    put("safetensors/header_array.safetensors", safetensors_file(None, b"", raw_header=b"[1,2,3]"))
    put("safetensors/metadata_not_string.safetensors",
        safetensors_file({"__metadata__": {"k": 3}}))
    put("safetensors/short.safetensors", b"\x10\x00\x00")
    put("safetensors/zero_byte.safetensors", b"")


def checkpoints():
    w = np.array([1, 2, 3, 4], np.float32).tobytes()
    meta = {"ember.format": "ember.checkpoint.v1", "epoch": "2", "step": "40",
            "rng": json.dumps({"shuffle": {"seed": 7, "offset": 64}}), "config": "{}"}

    def ckpt(m, names=("model.fc.weight",)):
        header = {n: {"dtype": "F32", "shape": [4], "data_offsets": [4 * 4 * i, 4 * 4 * (i + 1)]}
                  for i, n in enumerate(names)}
        header["__metadata__"] = m
        return safetensors_file(header, w * len(names))
    put("checkpoint/ok.safetensors", ckpt(meta))
    put("checkpoint/not_a_checkpoint.safetensors", ckpt({k: v for k, v in meta.items() if k != "ember.format"}))
    put("checkpoint/wrong_format.safetensors", ckpt(dict(meta, **{"ember.format": "ember.checkpoint.v9"})))
    put("checkpoint/epoch_not_integer.safetensors", ckpt(dict(meta, epoch="2.5")))
    put("checkpoint/step_missing.safetensors", ckpt({k: v for k, v in meta.items() if k != "step"}))
    put("checkpoint/rng_not_json.safetensors", ckpt(dict(meta, rng="{seed")))
    put("checkpoint/rng_bad_state.safetensors", ckpt(dict(meta, rng=json.dumps({"shuffle": {"seed": -1}}))))
    put("checkpoint/foreign_tensor.safetensors", ckpt(meta, names=("model.fc.weight", "weights")))
    put("checkpoint/truncated.safetensors", ckpt(meta)[:-7])


def dataset_configs():
    base = {"name": "c", "root": ".", "csv": "labels.csv", "id_column": "id",
            "targets": [{"name": "y", "task": "binary", "classes": ["a", "b"]}]}
    put("dataset_config/ok.json", json.dumps(base))
    put("dataset_config/csv_escapes_root.json", json.dumps(dict(base, csv="../../../../etc/passwd")))
    put("dataset_config/csv_absolute_outside.json", json.dumps(dict(base, csv="/etc/passwd")))
    put("dataset_config/image_root_escapes.json", json.dumps(dict(base, image_root="images/../../..")))
    put("dataset_config/bad_task.json", json.dumps(dict(base, targets=[{"name": "y", "task": "ranking"}])))
    put("dataset_config/max_pixels_negative.json", json.dumps(dict(base, max_pixels=-5)))
    put("dataset_config/wrong_type.json", json.dumps(dict(base, numeric_features="age")))
    put("dataset_config/not_json.json", "{\"name\": ")
    put("dataset_config/zero_byte.json", b"")


def experiments():
    put("experiment/ok.json", json.dumps({"dataset": "synthetic", "seed": 3}))
    put("experiment/fractions_over_one.json",
        json.dumps({"dataset": "synthetic", "split": {"train": 0.9, "val": 0.5, "test": 0.2}}))
    put("experiment/unknown_key.json", json.dumps({"dataset": "synthetic", "train_fraction": 0.9}))
    put("experiment/name_escapes.json", json.dumps({"dataset": "synthetic", "name": "../../outside"}))
    put("experiment/epochs_string.json", json.dumps({"dataset": "synthetic", "m1": {"train": {"epochs": "ten"}}}))
    put("experiment/negative_batch.json", json.dumps({"dataset": "synthetic", "m1": {"train": {"batch_size": -1}}}))
    put("experiment/cache_escapes.json", json.dumps({"dataset": "synthetic", "cache_file": "../../../../tmp/evil.cache"}))
    put("experiment/split_escapes.json",
        json.dumps({"dataset": "synthetic", "split": {"file": "../../../../etc/passwd"}}))
    put("experiment/embeddings_escape.json",
        json.dumps({"dataset": "synthetic", "m3": {"embeddings_file": "/tmp/elsewhere/e.safetensors"}}))
    put("experiment/cache_inside.json", json.dumps({"dataset": "synthetic", "cache_file": "../runs/cache/x.cache"}))
    put("experiment/not_object.json", "[1, 2]")


def filenames():
    for name, text in [("ok", "25_0_2_20170116174525125.jpg"), ("ok_chip", "1_1_0_20161219140623097.jpg.chip.jpg"),
                       ("two_fields", "25_0.jpg"), ("empty_field", "25__2_20170116174525125.jpg"),
                       ("wrong_suffix", "25_0_2_20170116174525125.png"), ("directory_only", "images/"),
                       ("empty", "")]:
        put(f"filename/{name}.txt", text)


def dataset_dirs():
    rng = np.random.default_rng(5)
    good = png_bytes(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    cfg = {"name": "t", "root": ".", "csv": "labels.csv", "id_column": "id", "numeric_features": ["x"],
           "targets": [{"name": "y", "task": "binary", "classes": ["a", "b"]}]}
    numeric = "id,x,y\n1,1.5,a\n2,NaN,b\n3,,a\n4,inf,b\n5,-Infinity,a\n6,1e999,b\n7,2.5,a\n"
    for case, skip in [("numeric_cells", False), ("numeric_cells_skip_bad", True)]:
        put(f"dataset/{case}/labels.csv", numeric)
        put(f"dataset/{case}/dataset.json", json.dumps(dict(cfg, skip_bad=skip)))
    img_cfg = dict(cfg, numeric_features=[], image_root="images", image_column="file", max_pixels=10000)
    rows = "id,file,y\n1,ok.png,a\n2,truncated.jpg,b\n3,bomb.png,a\n4,zero.jpg,b\n5,ok.png,a\n"
    rng2 = np.random.default_rng(6)
    jpg = jpeg_bytes(rng2.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    for case, skip in [("bad_images", False), ("bad_images_skip_bad", True)]:
        put(f"dataset/{case}/labels.csv", rows)
        put(f"dataset/{case}/dataset.json", json.dumps(dict(img_cfg, skip_bad=skip)))
        put(f"dataset/{case}/images/ok.png", good)
        put(f"dataset/{case}/images/truncated.jpg", jpg[: len(jpg) // 2])
        put(f"dataset/{case}/images/bomb.png", png_declaring(200, 200))  # 40000 > max_pixels 10000
        put(f"dataset/{case}/images/zero.jpg", b"")
    for case, skip in [("image_escapes", False), ("image_escapes_skip_bad", True)]:
        put(f"dataset/{case}/labels.csv", "id,file,y\n1,ok.png,a\n2,../../image/ok.png,b\n3,ok.png,a\n")
        put(f"dataset/{case}/dataset.json", json.dumps(dict(img_cfg, skip_bad=skip)))
        put(f"dataset/{case}/images/ok.png", good)


def main():
    for sub in ["image", "csv", "safetensors", "checkpoint", "dataset_config", "experiment", "filename", "dataset"]:
        shutil.rmtree(os.path.join(ROOT, sub), ignore_errors=True)  # regressions/ is left alone
    images(); csvs(); safetensors(); checkpoints(); dataset_configs(); experiments(); filenames(); dataset_dirs()
    total = sum(len(fs) for _, _, fs in os.walk(ROOT))
    print(f"wrote {ROOT} ({total} files)")


if __name__ == "__main__":
    main()
