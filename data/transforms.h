// The per-image pipeline of the loader: decode -> resize to the cache size (this uint8 result is what
// the cache stores) -> crop to the output size (random when training, centre otherwise) -> optional
// flip / rotation / brightness-contrast jitter -> normalised float CHW.
// Random choices come from a Philox Generator seeded by (seed, epoch, row), so an image gets the same
// augmentation whichever worker thread handles it.
#pragma once
#include <cstdint>
#include <string>

#include "data/image.h"

namespace ember::data {

struct ImagePipeline {
  int cache_h = 0, cache_w = 0;  // decoded images are resized to this (0: the output size)
  int out_h = 64, out_w = 64;    // network input size
  ResizeMode resize_mode = ResizeMode::Area;
  // Augmentation, applied only when the loader runs in training mode.
  bool random_crop = false;    // random out_h x out_w window of the cached image (else centre)
  bool hflip = false;          // flip with probability 1/2
  float rotate_degrees = 0;    // uniform in [-r, r]
  float brightness = 0;        // factor uniform in [1-b, 1+b]
  float contrast = 0;          // factor uniform in [1-c, 1+c]
  Normalization normalization = Normalization::ImageNet;

  int stored_h() const { return cache_h > 0 ? cache_h : out_h; }
  int stored_w() const { return cache_w > 0 ? cache_w : out_w; }
  std::string describe() const;  // part of the cache key
};

// decode result -> the uint8 image the cache holds.
Image to_stored(const Image& decoded, const ImagePipeline& p);
// cached image -> normalised CHW floats at dst (3 * out_h * out_w). `train` enables augmentation.
void stored_to_tensor(const Image& stored, const ImagePipeline& p, bool train, uint64_t seed, int64_t epoch,
                      int64_t row, float* dst);

}  // namespace ember::data
