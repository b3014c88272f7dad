// Replays tests/corpus/ (made by tools/make_corpus.py) and tests/corpus/regressions/ (inputs the
// fuzzers found) through the same entry points the fuzz targets use. Every corpus file has a row in
// kExpected: either success or an error whose message contains a specific substring (the reason,
// and where it helps the file/row). Regression inputs only have to fail cleanly: no crash, and
// success or an exception with a non-empty message. Runs under tools/sanitize.sh too, which is
// what turns "no crash" into "no memory error and no undefined behaviour".
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "apps/driver/experiment.h"
#include "data/config.h"
#include "data/csv.h"
#include "data/dataset.h"
#include "data/filename_pattern.h"
#include "data/image.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"

namespace fs = std::filesystem;
using namespace ember;

namespace {

const fs::path kCorpus = fs::path(EMBER_SOURCE_DIR) / "tests" / "corpus";
const int64_t kDefaultMaxPixels = data::DatasetConfig{}.max_pixels;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// The entry points, one per corpus folder (and per fuzz target). Each returns a short summary on
// success (checked for some files) and throws on bad input.
std::string run_image(const fs::path& p) {
  const std::string pre = data::check_image_file(p.string(), kDefaultMaxPixels);
  auto img = data::decode_image(p.string(), kDefaultMaxPixels);
  auto small = data::resize(img, 8, 8, data::ResizeMode::Area);
  auto big = data::resize(img, 20, 24, data::ResizeMode::Bilinear);
  // check_image_file must never call a file fine that decode_image then refuses.
  if (!pre.empty()) return "decoded, but check_image_file said: " + pre;
  return std::to_string(img.h) + "x" + std::to_string(img.w) + "x" + std::to_string(small.c + big.c - img.c);
}
// The pre-check alone (what load_dataset runs for every image): must also explain itself.
void check_image_precheck(const fs::path& p, bool expect_ok) {
  const std::string reason = data::check_image_file(p.string(), kDefaultMaxPixels);
  EXPECT_EQ(reason.empty(), expect_ok) << p << ": check_image_file said '" << reason << "'";
}
std::string run_csv(const fs::path& p) {
  auto t = data::read_csv(p.string());
  return std::to_string(t.header.size()) + " columns, " + std::to_string(t.num_rows()) + " rows";
}
std::string run_safetensors(const fs::path& p) {
  SafetensorsFile f(p.string());
  for (const auto& e : f.entries()) {
    (void)f.get(e.name, false);
    (void)f.get(e.name, true);
  }
  return std::to_string(f.entries().size()) + " tensors";
}
std::string run_checkpoint(const fs::path& p) {
  auto ck = load_checkpoint(p.string());
  return "epoch " + std::to_string(ck.epoch);
}
std::string run_dataset_config(const fs::path& p) {
  auto c = data::parse_dataset_config(slurp(p), p.parent_path().string(), "", p.string());
  return c.name;
}
std::string run_experiment(const fs::path& p) {
  auto c = driver::parse_experiment(nlohmann::json::parse(slurp(p)), p.string());
  return c.name;
}
std::string run_filename(const fs::path& p) {
  static const data::FilenamePattern utk("<age>_<gender>_<race>_<datetime>", {".jpg.chip.jpg", ".jpg"});
  auto fields = utk.parse(slurp(p));
  return fields.at("age");
}
std::string run_dataset(const fs::path& dir) {
  data::LoadOptions opt;
  opt.max_logged = 0;
  auto ds = data::load_dataset((dir / "dataset.json").string(), "", opt);
  return std::to_string(ds.size()) + " rows, " + std::to_string(ds.skipped_bad) + " skipped";
}

const std::map<std::string, std::function<std::string(const fs::path&)>> kEntry = {
    {"image", run_image},          {"csv", run_csv},
    {"safetensors", run_safetensors}, {"checkpoint", run_checkpoint},
    {"dataset_config", run_dataset_config}, {"experiment", run_experiment},
    {"filename", run_filename},    {"dataset", run_dataset},
};
// Fuzz target -> corpus folder whose entry point it exercises.
const std::map<std::string, std::string> kTargetFolder = {
    {"fuzz_image", "image"},          {"fuzz_csv", "csv"},
    {"fuzz_safetensors", "safetensors"}, {"fuzz_checkpoint", "checkpoint"},
    {"fuzz_dataset_config", "dataset_config"}, {"fuzz_experiment_config", "experiment"},
    {"fuzz_filename_pattern", "filename"},
};

// "ok" or "ok:<summary>" = must succeed (with that summary); anything else = the expected error
// substring. Keys are paths relative to tests/corpus (a dataset case is its folder).
const std::map<std::string, std::string> kExpected = {
    // images (max_pixels = the DatasetConfig default)
    {"image/ok.png", "ok:12x10x3"},
    {"image/ok.jpg", "ok:12x10x3"},
    {"image/truncated.jpg", "truncated"},
    {"image/truncated.png", "corrupt PNG (chunk 'IDAT'"},
    {"image/truncated_header.png", "corrupt PNG (chunk 'IHDR'"},
    {"image/bitflip_jpeg_precision.jpg", "cannot decode"},
    {"image/bitflip_jpeg_soi.jpg", "cannot decode"},
    {"image/bitflip_png_idat.png", "cannot decode (Corrupt PNG)"},
    {"image/bitflip_png_signature.png", "cannot decode"},
    {"image/bomb.png", "10000x10000 exceeds the limit of 67108864 pixels"},
    {"image/bomb_beyond_stb.png", "cannot decode"},  // stb's own 2^30-byte cap, also before allocating
    {"image/zero_byte.jpg", "zero-byte"},
    {"image/text.jpg", "cannot decode"},
    // csv
    {"csv/ok.csv", "ok:3 columns, 2 rows"},
    {"csv/unbalanced_quote.csv", "unbalanced quote in column 2 of the row at line 2"},
    {"csv/stray_quote.csv", "stray quote inside unquoted field in column 2"},
    {"csv/after_quote.csv", "unexpected character after closing quote in column 2"},
    {"csv/ragged_short.csv", "row at line 3 has 2 fields but the header has 3"},
    {"csv/ragged_long.csv", "row at line 2 has 4 fields but the header has 3"},
    {"csv/bom.csv", "ok:2 columns, 1 rows"},
    {"csv/bom_only.csv", "empty CSV file"},
    {"csv/crlf.csv", "ok:2 columns, 2 rows"},
    {"csv/non_utf8.csv", "ok:2 columns, 2 rows"},  // bytes are kept; values are compared, not decoded
    {"csv/nul_bytes.csv", "ok:2 columns, 1 rows"},
    {"csv/zero_byte.csv", "empty CSV file"},
    {"csv/nan_inf_empty.csv", "ok:2 columns, 5 rows"},  // cells are text here; see dataset/numeric_*
    // safetensors
    {"safetensors/ok.safetensors", "ok:1 tensors"},
    {"safetensors/lying_offsets.safetensors", "data_offsets [0, 4096] run past the data buffer (24 bytes)"},
    {"safetensors/offsets_reversed.safetensors", "data_offsets"},
    {"safetensors/offset_overflow.safetensors", "data_offsets"},
    {"safetensors/size_mismatch.safetensors", "bytes"},
    {"safetensors/overlapping.safetensors", "overlap"},
    {"safetensors/gap.safetensors", "gap"},
    {"safetensors/header_past_file.safetensors", "runs past the end of the file"},
    {"safetensors/header_absurd.safetensors", "absurdly large"},
    {"safetensors/unknown_dtype.safetensors", "dtype"},
    {"safetensors/duplicate_names.safetensors", "duplicate tensor 'w'"},
    {"safetensors/negative_shape.safetensors", "shape"},
    {"safetensors/shape_overflow.safetensors", "shape"},
    {"safetensors/not_json.safetensors", "not valid JSON"},
    {"safetensors/header_array.safetensors", "not a JSON object"},
    {"safetensors/metadata_not_string.safetensors", "is not a string"},
    {"safetensors/short.safetensors", "shorter than the 8-byte header length"},
    {"safetensors/zero_byte.safetensors", "shorter than the 8-byte header length"},
    // checkpoints
    {"checkpoint/ok.safetensors", "ok:epoch 2"},
    {"checkpoint/not_a_checkpoint.safetensors", "not an ember checkpoint"},
    {"checkpoint/wrong_format.safetensors", "ember.checkpoint.v9"},
    {"checkpoint/epoch_not_integer.safetensors", "'epoch' = '2.5' is not an integer"},
    {"checkpoint/step_missing.safetensors", "metadata has no 'step'"},
    {"checkpoint/rng_not_json.safetensors", "'rng' is not valid JSON"},
    {"checkpoint/rng_bad_state.safetensors", "rng"},
    {"checkpoint/foreign_tensor.safetensors", "tensor 'weights' is neither"},
    {"checkpoint/truncated.safetensors", "truncated or corrupt"},
    // dataset configs (base dir = tests/corpus/dataset_config)
    {"dataset_config/ok.json", "ok:c"},
    {"dataset_config/csv_escapes_root.json", "escapes"},
    {"dataset_config/csv_absolute_outside.json", "escapes"},
    {"dataset_config/image_root_escapes.json", "escapes"},
    {"dataset_config/bad_task.json", "unknown task 'ranking'"},
    {"dataset_config/max_pixels_negative.json", "max_pixels must be positive (got -5)"},
    {"dataset_config/wrong_type.json", "numeric_features"},
    {"dataset_config/not_json.json", "JSON"},
    {"dataset_config/zero_byte.json", "JSON"},
    // experiments
    {"experiment/ok.json", "ok:experiment"},
    {"experiment/fractions_over_one.json", "split fractions"},
    {"experiment/epochs_string.json", "epochs"},
    {"experiment/negative_batch.json", "batch_size"},
    {"experiment/cache_escapes.json", "cache_file path"},
    {"experiment/split_escapes.json", "split.file path"},
    {"experiment/unknown_key.json", "unknown key 'train_fraction'"},
    {"experiment/name_escapes.json", "must be a plain directory name"},
    {"experiment/embeddings_escape.json", "m3.embeddings_file path '/tmp/elsewhere/e.safetensors' escapes"},
    {"experiment/cache_inside.json", "ok:experiment"},
    {"experiment/not_object.json", "object"},
    // UTKFace file names
    {"filename/ok.txt", "ok:25"},
    {"filename/ok_chip.txt", "ok:1"},
    {"filename/two_fields.txt", "race"},
    {"filename/empty_field.txt", "gender"},
    {"filename/wrong_suffix.txt", "suffix"},
    {"filename/directory_only.txt", "age"},
    {"filename/empty.txt", "does not end with an accepted suffix"},
    // whole datasets: numeric cells (NaN and empty are missing values, imputed later; inf and
    // overflowing numbers are refused), bad images, image paths escaping image_root
    {"dataset/numeric_cells", "row at line 5, column 'x': 'inf' is not a number"},
    {"dataset/numeric_cells_skip_bad", "ok:4 rows, 3 skipped"},
    {"dataset/bad_images", "row at line 3, column 'file': image"},
    {"dataset/bad_images_skip_bad", "ok:2 rows, 3 skipped"},
    {"dataset/image_escapes", "row at line 3, column 'file'"},
    {"dataset/image_escapes_skip_bad", "ok:2 rows, 1 skipped"},
};

struct Outcome {
  bool ok = false;
  std::string text;  // summary or error message
};

Outcome replay(const std::string& folder, const fs::path& p) {
  try {
    return {true, kEntry.at(folder)(p)};
  } catch (const std::exception& e) {
    return {false, e.what()};
  }
}

std::vector<fs::path> cases_in(const std::string& folder) {
  std::vector<fs::path> out;
  if (!fs::is_directory(kCorpus / folder)) return out;
  for (const auto& e : fs::directory_iterator(kCorpus / folder))
    if (folder == "dataset" ? e.is_directory() : e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(CorpusReplay, EveryFileHasTheExpectedOutcome) {
  std::set<std::string> seen;
  for (const auto& [folder, entry] : kEntry) {
    for (const auto& p : cases_in(folder)) {
      const std::string key = fs::relative(p, kCorpus).generic_string();
      seen.insert(key);
      auto want = kExpected.find(key);
      if (want == kExpected.end()) {
        ADD_FAILURE() << key << ": no expected outcome in kExpected (add one when adding a corpus file)";
        continue;
      }
      const Outcome got = replay(folder, p);
      const std::string& w = want->second;
      if (w.rfind("ok", 0) == 0) {
        EXPECT_TRUE(got.ok) << key << ": expected success, got error: " << got.text;
        if (got.ok && w.size() > 3) {
          EXPECT_EQ(got.text, w.substr(3)) << key;
        }
      } else {
        EXPECT_FALSE(got.ok) << key << ": expected an error containing '" << w << "', but it loaded (" << got.text << ")";
        if (!got.ok) {
          EXPECT_NE(got.text.find(w), std::string::npos) << key << ": error '" << got.text << "' lacks '" << w << "'";
        }
      }
    }
  }
  for (const auto& [key, w] : kExpected) EXPECT_TRUE(seen.count(key)) << key << " is in kExpected but not in tests/corpus";
}

// Errors must say WHICH file they are about (a batch job reading thousands of files is useless
// otherwise). Config/experiment errors name the source they were given; dataset errors the CSV.
TEST(CorpusReplay, ErrorsNameTheFile) {
  for (const std::string folder : {"image", "csv", "safetensors", "checkpoint", "dataset_config", "dataset"}) {
    for (const auto& p : cases_in(folder)) {
      const Outcome got = replay(folder, p);
      if (got.ok) continue;
      const std::string name = folder == "dataset" ? "labels.csv" : p.filename().string();
      EXPECT_NE(got.text.find(name), std::string::npos) << p << ": error '" << got.text << "' does not name the file";
    }
  }
}

// The header-only pre-check (used by load_dataset and skip_bad) agrees with the decoder, except
// for damage INSIDE the compressed pixel data, which only decoding can see: those files pass the
// pre-check and are refused, naming the file, when the loader decodes them.
TEST(CorpusReplay, ImagePrecheckAgreesWithDecoder) {
  const std::set<std::string> only_decoding_sees = {"bitflip_png_idat.png"};
  for (const auto& p : cases_in("image")) {
    const Outcome got = replay("image", p);
    check_image_precheck(p, got.ok || only_decoding_sees.count(p.filename().string()));
  }
}

// The pixel limit is configurable: the same small image is refused under a lower limit.
TEST(CorpusReplay, PixelLimitIsConfigurable) {
  const std::string png = (kCorpus / "image" / "ok.png").string();  // 12 x 10 = 120 pixels
  EXPECT_NO_THROW(data::decode_image(png, 120));
  try {
    data::decode_image(png, 119);
    ADD_FAILURE() << "a 120-pixel image passed a 119-pixel limit";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the limit of 119 pixels"), std::string::npos) << e.what();
  }
  EXPECT_NE(data::check_image_file(png, 119).find("over the limit"), std::string::npos);
}

// Inputs the fuzzers found: no crash, success or an explained error.
TEST(CorpusReplay, FuzzRegressions) {
  const fs::path dir = kCorpus / "regressions";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int replayed = 0;
  for (const auto& target : fs::directory_iterator(dir)) {
    if (!target.is_directory()) continue;  // README.md
    auto folder = kTargetFolder.find(target.path().filename().string());
    ASSERT_NE(folder, kTargetFolder.end()) << "unknown fuzz target folder " << target.path();
    for (const auto& f : fs::directory_iterator(target.path())) {
      if (!f.is_regular_file() || f.path().filename() == "README.md") continue;
      const Outcome got = replay(folder->second, f.path());
      EXPECT_FALSE(got.text.empty()) << f.path() << ": empty error message";
      ++replayed;
    }
  }
  std::printf("replayed %d fuzz regressions\n", replayed);
}

// A scan that decodes with a Huffman table no DHT segment defined: stb 2.27 would decode with its
// uninitialised tables and read far out of bounds (fuzz_image, session 3). The check in data/image.cpp
// must refuse it by name, in both entry points, before stb sees it.
TEST(CorpusReplay, ScanWithUndefinedHuffmanTableIsRefused) {
  const fs::path jpg = kCorpus / "regressions" / "fuzz_image" / "stb_scan_uses_undefined_huffman_table.jpg";
  ASSERT_TRUE(fs::exists(jpg)) << jpg;
  try {
    data::decode_image(jpg.string(), 1 << 20);
    ADD_FAILURE() << "decoded " << jpg;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AC Huffman table 0, which no DHT segment before it defines"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(jpg.filename().string()), std::string::npos) << e.what();
  }
  EXPECT_NE(data::check_image_file(jpg.string(), 1 << 20).find("no DHT segment"), std::string::npos);
}
