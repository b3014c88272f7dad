// Batches for the trainer, from in-memory tensors (tabular features, cached embeddings) or from
// the image loader. Every source yields rows in a seeded order (shuffled per epoch when training),
// so a CPU run is reproducible.
#pragma once
#include <memory>
#include <vector>

#include "apps/driver/heads.h"
#include "data/loader.h"
#include "engine/tensor.h"

namespace ember::driver {

struct TrainBatch {
  std::vector<Tensor> inputs;
  std::vector<Tensor> targets;  // one per head: int64 [B] class or float32 [B] standardised value
  std::vector<int64_t> rows;    // dataset rows
  int64_t size() const { return int64_t(rows.size()); }
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual void start_epoch(int64_t epoch) = 0;
  virtual bool next(TrainBatch& out) = 0;
  virtual int64_t num_batches() const = 0;
  virtual int64_t size() const = 0;
};

// Rows `rows` of the dataset's targets, as the heads expect them.
std::vector<Tensor> head_targets(const data::Dataset& ds, const std::vector<HeadSpec>& heads,
                                 const std::vector<int64_t>& rows);
// Copies rows `idx` of a [N, ...] tensor into a new contiguous [idx.size(), ...] tensor.
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& idx);

// Whole tensors in memory; inputs[i] and targets[i] have one row per entry of `rows`.
class TensorSource : public BatchSource {
 public:
  TensorSource(std::vector<Tensor> inputs, std::vector<Tensor> targets, std::vector<int64_t> rows, int64_t batch_size,
               bool shuffle, uint64_t seed);
  void start_epoch(int64_t epoch) override;
  bool next(TrainBatch& out) override;
  int64_t num_batches() const override { return (size() + batch_ - 1) / batch_; }
  int64_t size() const override { return int64_t(rows_.size()); }

 private:
  std::vector<Tensor> inputs_, targets_;
  std::vector<int64_t> rows_, order_;
  int64_t batch_, cursor_ = 0;
  bool shuffle_;
  uint64_t seed_;
};

// Images (and optionally tabular features as a first input) from a data::DataLoader.
class ImageSource : public BatchSource {
 public:
  ImageSource(const data::Dataset& ds, std::vector<int64_t> rows, const data::TabularPreprocessor* pre,
              data::LoaderOptions options, std::shared_ptr<data::ImageCache> cache, std::vector<HeadSpec> heads);
  void start_epoch(int64_t epoch) override { loader_.start_epoch(epoch); }
  bool next(TrainBatch& out) override;
  int64_t num_batches() const override { return loader_.num_batches(); }
  int64_t size() const override { return loader_.size(); }

 private:
  const data::Dataset& ds_;
  data::DataLoader loader_;
  std::vector<HeadSpec> heads_;
};

}  // namespace ember::driver
