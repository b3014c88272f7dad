#include "nn/checkpoint.h"

#include <nlohmann/json.hpp>

#include "nn/safetensors.h"

namespace ember {
namespace {

constexpr const char* kFormat = "ember.checkpoint.v1";
const std::string kModel = "model.", kOptim = "optim.", kUser = "user.";

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

template <class... Args>
[[noreturn]] void fail(const std::string& path, Args&&... args) {
  throw Error(detail::cat("checkpoint '", path, "': ", std::forward<Args>(args)...));
}

const std::string& require(const std::string& path, const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) fail(path, "metadata has no '", key, "'");
  return it->second;
}

int64_t parse_int(const std::string& path, const std::string& key, const std::string& text) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) fail(path, "metadata '", key, "' = '", text, "' is not an integer");
  return v;
}

nlohmann::json parse_json(const std::string& path, const std::string& key, const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, "metadata '", key, "' is not valid JSON: ", e.what());
  }
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : ckpt.model) tensors[kModel + name] = t;
  for (const auto& [name, t] : ckpt.optimizer.tensors) tensors[kOptim + name] = t;

  std::map<std::string, std::string> meta;
  meta["ember.format"] = kFormat;
  meta["epoch"] = std::to_string(ckpt.epoch);
  meta["step"] = std::to_string(ckpt.step);
  nlohmann::json rng = nlohmann::json::object();
  for (const auto& [name, g] : ckpt.generators) rng[name] = {{"seed", g.seed}, {"offset", g.offset}};
  meta["rng"] = rng.dump();
  if (!ckpt.optimizer.scalars.is_null()) meta["optim"] = ckpt.optimizer.scalars.dump();
  if (!ckpt.config.empty()) {
    parse_json(path, "config", ckpt.config);  // refuse to write a checkpoint we could not read back
    meta["config"] = ckpt.config;
  }
  for (const auto& [k, v] : ckpt.user) meta[kUser + k] = v;
  save_safetensors(path, tensors, meta);
}

Checkpoint load_checkpoint(const std::string& path) {
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> tensors;
  try {
    tensors = load_safetensors(path, &meta);
  } catch (const Error& e) {
    fail(path, "cannot be read (truncated or corrupt?): ", e.what());
  }
  auto fmt = meta.find("ember.format");
  if (fmt == meta.end() || fmt->second != kFormat)
    fail(path, "not an ember checkpoint (metadata 'ember.format' is ",
         fmt == meta.end() ? std::string("missing") : "'" + fmt->second + "'", ", expected '", kFormat, "')");

  Checkpoint ck;
  ck.epoch = parse_int(path, "epoch", require(path, meta, "epoch"));
  ck.step = parse_int(path, "step", require(path, meta, "step"));
  nlohmann::json rng = parse_json(path, "rng", require(path, meta, "rng"));
  if (!rng.is_object()) fail(path, "metadata 'rng' is not a JSON object");
  for (const auto& [name, g] : rng.items()) {
    if (!g.is_object() || !g.contains("seed") || !g.contains("offset") || !g["seed"].is_number_unsigned() ||
        !g["offset"].is_number_unsigned())
      fail(path, "generator '", name, "' needs unsigned 'seed' and 'offset', got ", g.dump());
    ck.generators[name] = {g["seed"].get<uint64_t>(), g["offset"].get<uint64_t>()};
  }
  if (auto it = meta.find("optim"); it != meta.end()) ck.optimizer.scalars = parse_json(path, "optim", it->second);
  if (auto it = meta.find("config"); it != meta.end()) ck.config = it->second;
  for (const auto& [k, v] : meta)
    if (starts_with(k, kUser)) ck.user[k.substr(kUser.size())] = v;

  for (auto& [name, t] : tensors) {
    if (starts_with(name, kModel)) ck.model[name.substr(kModel.size())] = t;
    else if (starts_with(name, kOptim)) ck.optimizer.tensors[name.substr(kOptim.size())] = t;
    else fail(path, "tensor '", name, "' is neither 'model.*' nor 'optim.*'");
  }
  return ck;
}

}  // namespace ember
