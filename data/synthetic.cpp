#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "data/image.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace ember::data {
namespace fs = std::filesystem;

namespace {

struct Draw {
  Generator gen;
  explicit Draw(uint64_t seed) : gen(seed) {}
  double uniform() { return double(gen.next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  int64_t below(int64_t n) { return int64_t(uniform() * double(n)) % n; }
};

enum Shape { kCircle, kSquare, kTriangle };
const char* kShapeNames[] = {"circle", "square", "triangle"};

bool inside(Shape s, double dx, double dy, double r) {
  switch (s) {
    case kCircle: return dx * dx + dy * dy <= r * r;
    case kSquare: return std::abs(dx) <= 0.85 * r && std::abs(dy) <= 0.85 * r;
    case kTriangle: {  // apex up: half-width grows from 0 at the top to r at the bottom
      if (dy < -r || dy > r) return false;
      return std::abs(dx) <= r * (dy + r) / (2 * r);
    }
  }
  return false;
}

Image draw_image(Draw& d, int size, Shape shape, double radius) {
  Image img(size, size, 3);
  const double cx = radius + d.uniform() * (size - 2 * radius), cy = radius + d.uniform() * (size - 2 * radius);
  const int hue = int(d.below(3));
  uint8_t colour[3];
  for (int ch = 0; ch < 3; ++ch) colour[ch] = uint8_t(ch == hue ? 200 + d.below(56) : 40 + d.below(100));
  const int background = 30 + int(d.below(50));
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const bool in = inside(shape, x + 0.5 - cx, y + 0.5 - cy, radius);
      for (int ch = 0; ch < 3; ++ch) {
        const double noise = 12.0 * d.normal();
        img.at(y, x, ch) = uint8_t(std::clamp((in ? colour[ch] : background) + noise, 0.0, 255.0));
      }
    }
  return img;
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(5);
  os << v;
  return os.str();
}

}  // namespace

SyntheticDataset write_synthetic_dataset(const std::string& dir, const SyntheticOptions& o) {
  EMBER_CHECK(o.rows > 0 && o.image_size >= 16, "synthetic dataset: need rows > 0 and image_size >= 16");
  EMBER_CHECK(o.format == "png" || o.format == "bmp", "synthetic dataset: format must be png or bmp");
  EMBER_CHECK(o.duplicates >= 0 && o.duplicates <= o.rows, "synthetic dataset: bad duplicate count");
  fs::create_directories(fs::path(dir) / "images");
  SyntheticDataset out;
  out.dir = dir;
  out.csv_path = (fs::path(dir) / "labels.csv").string();
  out.config_path = (fs::path(dir) / "synthetic.json").string();

  Draw d(o.seed);
  std::ofstream csv(out.csv_path, std::ios::binary);
  if (!csv) throw Error(detail::cat("synthetic dataset: cannot write '", out.csv_path, "'"));
  csv << "id,file,patient_id,marker,bmi,site,sex,shape,label,age,duplicate_of\n";
  static const char* kSites[] = {"head", "trunk", "arm", "leg"};
  int64_t patient = 0, left_for_patient = 0;
  std::string sex;
  std::vector<std::string> lines;  // csv rows (without id/file) for duplicating
  for (int64_t i = 0; i < o.rows; ++i) {
    if (left_for_patient == 0) {
      ++patient;
      left_for_patient = 2 + d.below(2);
      sex = d.uniform() < 0.5 ? "F" : "M";
    }
    --left_for_patient;
    const Shape shape = Shape(d.below(3));
    const double radius = 0.15 * o.image_size + d.uniform() * 0.22 * o.image_size;
    const Image img = draw_image(d, o.image_size, shape, radius);
    const double marker = d.normal(), bmi = 25 + 4 * d.normal();
    const int site = int(d.below(4));
    const double img_signal = shape == kCircle ? 1.0 : -1.0;
    const double logit = 2.2 * img_signal + 2.2 * marker + (site == 3 ? 0.3 : 0.0) + 0.5 * d.normal();
    const int label = logit > 0 ? 1 : 0;
    const double age = 15 + 3 * radius * (32.0 / o.image_size) + 4 * marker + 3 * d.normal();
    const bool marker_missing = d.uniform() < o.missing_rate, bmi_missing = d.uniform() < o.missing_rate;

    char name[32];
    std::snprintf(name, sizeof name, "img_%05lld.%s", static_cast<long long>(i), o.format.c_str());
    write_image((fs::path(dir) / "images" / name).string(), img);
    std::ostringstream row;
    row << "P" << patient << ',' << (marker_missing ? "NA" : fmt(marker)) << ',' << (bmi_missing ? "" : fmt(bmi))
        << ',' << kSites[site] << ',' << sex << ',' << kShapeNames[shape] << ',' << label << ',' << fmt(age);
    lines.push_back(row.str());
    csv << "s" << i << ',' << name << ',' << row.str() << ",\n";
  }
  // Byte-identical copies of earlier images under new names, flagged in duplicate_of.
  for (int64_t k = 0; k < o.duplicates; ++k) {
    const int64_t src = d.below(o.rows), i = o.rows + k;
    char src_name[32], name[32];
    std::snprintf(src_name, sizeof src_name, "img_%05lld.%s", static_cast<long long>(src), o.format.c_str());
    std::snprintf(name, sizeof name, "img_%05lld.%s", static_cast<long long>(i), o.format.c_str());
    fs::copy_file(fs::path(dir) / "images" / src_name, fs::path(dir) / "images" / name,
                  fs::copy_options::overwrite_existing);
    csv << "s" << i << ',' << name << ',' << lines[size_t(src)] << ',' << src_name << "\n";
  }
  out.rows_written = o.rows + o.duplicates;

  nlohmann::json cfg = {
      {"name", "synthetic"},
      {"root", "."},
      {"csv", "labels.csv"},
      {"image_root", "images"},
      {"id_column", "id"},
      {"image_column", "file"},
      {"numeric_features", {"marker", "bmi"}},
      {"categorical_features", {"site", "sex"}},
      {"targets",
       {{{"name", "label"}, {"task", "binary"}, {"classes", {"negative", "positive"}}},
        {{"name", "age"}, {"task", "regression"}}}},
      {"group_column", "patient_id"},
      {"duplicates", {{"drop_if_nonempty", "duplicate_of"}}},
      {"forbidden_columns", {"shape"}},
  };
  std::ofstream(out.config_path) << cfg.dump(2) << "\n";
  return out;
}

}  // namespace ember::data
