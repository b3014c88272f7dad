#include "apps/driver/sources.h"

#include <cmath>
#include <cstring>

#include "engine/rng.h"

namespace ember::driver {

std::vector<Tensor> head_targets(const data::Dataset& ds, const std::vector<HeadSpec>& heads,
                                 const std::vector<int64_t>& rows) {
  std::vector<Tensor> out;
  for (const auto& h : heads) {
    const auto& col = ds.targets[size_t(ds.target_index(h.target))];
    const int64_t n = int64_t(rows.size());
    if (h.classification()) {
      Tensor t = Tensor::empty({n}, DType::Int64);
      int64_t* p = t.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = int64_t(col[size_t(rows[i])]);
      out.push_back(t);
    } else {
      Tensor t = Tensor::empty({n});
      float* p = t.data<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = float((col[size_t(rows[i])] - h.mean) / h.std);
      out.push_back(t);
    }
  }
  return out;
}

Tensor gather_rows(const Tensor& t_in, const std::vector<int64_t>& idx) {
  Tensor t = t_in.contiguous();
  Shape s = t.shape();
  const int64_t n = s[0];
  s[0] = int64_t(idx.size());
  Tensor out = Tensor::empty(s, t.dtype());
  const size_t row_bytes = n ? t.nbytes() / size_t(n) : 0;
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < idx.size(); ++i) {
    EMBER_CHECK(idx[i] >= 0 && idx[i] < n, "gather_rows: row ", idx[i], " outside [0, ", n, ")");
    std::memcpy(dst + i * row_bytes, src + size_t(idx[i]) * row_bytes, row_bytes);
  }
  return out;
}

TensorSource::TensorSource(std::vector<Tensor> inputs, std::vector<Tensor> targets, std::vector<int64_t> rows,
                           int64_t batch_size, bool shuffle, uint64_t seed)
    : inputs_(std::move(inputs)), targets_(std::move(targets)), rows_(std::move(rows)), batch_(batch_size),
      shuffle_(shuffle), seed_(seed) {
  for (auto& t : inputs_)
    EMBER_CHECK(t.shape()[0] == int64_t(rows_.size()), "TensorSource: input ", t.str(), " has ", t.shape()[0],
                " rows, expected ", rows_.size());
}

void TensorSource::start_epoch(int64_t epoch) {
  order_.resize(rows_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = int64_t(i);
  if (shuffle_) {
    Generator g(seed_ ^ (0x9e3779b97f4a7c15ULL * uint64_t(epoch + 1)));
    order_ = g.permutation(int64_t(rows_.size()));
  }
  cursor_ = 0;
}

bool TensorSource::next(TrainBatch& out) {
  if (cursor_ >= int64_t(order_.size())) return false;
  const int64_t end = std::min<int64_t>(cursor_ + batch_, int64_t(order_.size()));
  std::vector<int64_t> idx(order_.begin() + cursor_, order_.begin() + end);
  cursor_ = end;
  out.inputs.clear();
  out.targets.clear();
  out.rows.clear();
  for (auto& t : inputs_) out.inputs.push_back(gather_rows(t, idx));
  for (auto& t : targets_) out.targets.push_back(gather_rows(t, idx));
  for (auto i : idx) out.rows.push_back(rows_[size_t(i)]);
  return true;
}

ImageSource::ImageSource(const data::Dataset& ds, std::vector<int64_t> rows, const data::TabularPreprocessor* pre,
                         data::LoaderOptions options, std::shared_ptr<data::ImageCache> cache, std::vector<HeadSpec> heads)
    : ds_(ds), loader_(ds, std::move(rows), pre, options, std::move(cache)), heads_(std::move(heads)) {}

bool ImageSource::next(TrainBatch& out) {
  data::Batch b;
  if (!loader_.next(b)) return false;
  out.inputs = {b.images};
  if (b.features.defined() && b.features.shape()[1] > 0) out.inputs.push_back(b.features);
  out.rows = b.rows;
  out.targets = head_targets(ds_, heads_, b.rows);
  return true;
}

}  // namespace ember::driver
