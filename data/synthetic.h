// A synthetic multimodal dataset made by ember itself, written as image files + labels.csv + a
// dataset config, so it goes through exactly the same pipeline as the real datasets.
//
// Each row is a small RGB image of one shape (circle, square or triangle; random colour, size and
// position, on a noisy background) plus a table row:
//   patient_id  group (2-3 images per patient; splits must keep a patient together)
//   marker      numeric, ~N(0,1), missing for ~missing_rate of rows
//   bmi         numeric noise feature, missing for ~missing_rate of rows
//   site        categorical (head/trunk/arm/leg), weakly informative
//   sex         categorical (F/M), per patient: a subgroup attribute for fairness reports
//   shape       the drawn shape's name: a LEAK column (forbidden in the config)
//   label       binary: positive when 2.2*[shape is a circle: +1, else -1] + 2.2*marker + noise > 0,
//               so the image alone or the table alone reach ~80% and fusion ~95%
//   age         regression: 15 + 3 * radius(px) + 4 * marker + noise (image size and table)
//   duplicate_of  the last `duplicates` rows are byte-identical copies of earlier images
// Everything is a pure function of the seed (Philox), so two runs produce identical files.
#pragma once
#include <cstdint>
#include <string>

namespace ember::data {

struct SyntheticOptions {
  int64_t rows = 600;       // before duplicates
  int image_size = 32;
  uint64_t seed = 0;
  std::string format = "png";  // png | bmp
  double missing_rate = 0.05;
  int64_t duplicates = 10;
};

struct SyntheticDataset {
  std::string dir, config_path, csv_path;
  int64_t rows_written = 0;  // including duplicates
};

// Creates dir (and dir/images) and writes images, labels.csv and synthetic.json.
SyntheticDataset write_synthetic_dataset(const std::string& dir, const SyntheticOptions& options = {});

}  // namespace ember::data
