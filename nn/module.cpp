// Module bookkeeping: registration, dotted names, state_dict loading, modes, freezing.
#include "nn/module.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"

namespace ember::nn {
namespace {

thread_local detail::CallObserver g_observer = nullptr;
thread_local void* g_observer_context = nullptr;

std::string join(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  return name.empty() ? prefix : prefix + "." + name;
}

// "features" matches "features.0.weight" but not "features2.weight"; "" matches everything.
bool under_prefix(const std::string& name, std::string prefix) {
  if (!prefix.empty() && prefix.back() == '.') prefix.pop_back();
  if (prefix.empty()) return true;
  return name == prefix || (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
                            name[prefix.size()] == '.');
}

// PyTorch's BatchNorm saves a step counter ember does not use; loading it is not an error.
bool is_bookkeeping(const std::string& name) {
  const std::string tail = "num_batches_tracked";
  return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

namespace detail {
void set_call_observer(CallObserver observer, void* context) {
  g_observer = observer;
  g_observer_context = context;
}
}  // namespace detail

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string LoadReport::str() const {
  std::ostringstream os;
  for (const auto& m : missing) os << "  missing key: " << m << "\n";
  for (const auto& u : unexpected) os << "  unexpected key: " << u << "\n";
  for (const auto& s : mismatched)
    os << "  shape mismatch for " << s.name << ": model expects " << shape_str(s.expected) << ", state_dict has "
       << shape_str(s.found) << "\n";
  return os.str();
}

// ---- calling --------------------------------------------------------------------------------

Tensor Module::forward(const Tensor&) {
  throw Error(::ember::detail::cat("nn::", type_name_, ": this module has several inputs or outputs; call call_many()"));
}

std::vector<Tensor> Module::forward_many(const std::vector<Tensor>& xs) {
  EMBER_CHECK(xs.size() == 1, "nn::", type_name_, ": expects exactly 1 input, got ", xs.size());
  return {forward(xs[0])};
}

Tensor Module::operator()(const Tensor& x) {
  Tensor y = forward(x);
  if (g_observer) g_observer(g_observer_context, *this, {y});
  return y;
}

std::vector<Tensor> Module::call_many(const std::vector<Tensor>& xs) {
  std::vector<Tensor> ys = forward_many(xs);
  if (g_observer) g_observer(g_observer_context, *this, ys);
  return ys;
}

// ---- registration -----------------------------------------------------------------------------

void Module::register_parameter(const std::string& name, Tensor* slot, bool requires_grad) {
  EMBER_CHECK(slot && slot->defined(), "nn::", type_name_, ": parameter '", name, "' is undefined");
  for (const auto& [n, _] : params_) EMBER_CHECK(n != name, "nn::", type_name_, ": parameter '", name, "' registered twice");
  slot->requires_grad_(requires_grad);
  params_.emplace_back(name, slot);
}

void Module::register_buffer(const std::string& name, Tensor* slot) {
  EMBER_CHECK(slot && slot->defined(), "nn::", type_name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, slot);
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  EMBER_CHECK(m != nullptr, "nn::", type_name_, ": child '", name, "' is null");
  EMBER_CHECK(name.find('.') == std::string::npos, "nn::", type_name_, ": child name '", name, "' may not contain '.'");
  for (const auto& [n, _] : children_) EMBER_CHECK(n != name, "nn::", type_name_, ": child '", name, "' registered twice");
  children_.emplace_back(name, std::move(m));
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  std::string known;
  for (const auto& [n, m] : children_) {
    if (n == name) return m;
    known += (known.empty() ? "" : ", ") + n;
  }
  throw Error(::ember::detail::cat("nn::", type_name_, ": no child named '", name, "' (children: ", known, ")"));
}

// ---- enumeration ------------------------------------------------------------------------------

void Module::collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor*>>& out) const {
  for (const auto& [n, t] : params ? params_ : buffers_) out.emplace_back(join(prefix, n), t);
  for (const auto& [n, c] : children_) c->collect(join(prefix, n), params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, slots);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, t] : slots) out.emplace_back(n, *t);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, slots);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, t] : slots) out.emplace_back(n, *t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out{{"", const_cast<Module*>(this)}};
  for (const auto& [n, c] : children_)
    for (auto& [sub, m] : c->named_modules()) out.emplace_back(join(n, sub), m);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : named_parameters()) out[n] = t;
  for (auto& [n, t] : named_buffers()) out[n] = t;
  return out;
}

// ---- loading ----------------------------------------------------------------------------------

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, slots);
  collect("", false, slots);
  LoadReport report;
  std::set<std::string> known;
  std::vector<std::pair<Tensor*, const Tensor*>> copies;
  for (auto& [name, slot] : slots) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
    } else if (!it->second.defined() || it->second.shape() != slot->shape()) {
      report.mismatched.push_back({name, slot->shape(), it->second.defined() ? it->second.shape() : Shape{}});
    } else {
      copies.emplace_back(slot, &it->second);
    }
  }
  for (const auto& [name, _] : state) {
    if (known.count(name)) continue;
    (is_bookkeeping(name) ? report.ignored : report.unexpected).push_back(name);
  }
  if (strict && !report.ok())
    throw Error(::ember::detail::cat("nn::", type_name_, ".load_state_dict (strict): ", report.missing.size(), " missing, ",
                            report.unexpected.size(), " unexpected, ", report.mismatched.size(),
                            " mis-shaped tensor(s); nothing was loaded\n", report.str()));
  NoGradGuard no_grad;
  for (auto& [slot, src] : copies) {
    EMBER_CHECK(is_floating(src->dtype()) || src->dtype() == DType::BFloat16 || src->dtype() == slot->dtype(),
                "nn::load_state_dict: tensor '", src->name(), "' has dtype ", dtype_name(src->dtype()),
                " which cannot be loaded into ", slot->str());
    slot->copy_(src->device() == slot->device() ? *src : src->to(slot->device()));
    ++report.loaded;
  }
  return report;
}

// ---- modes ------------------------------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, c] : children_) c->train(on);
}

void Module::to(Device device) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, slots);
  collect("", false, slots);
  for (auto& [name, slot] : slots) {
    if (slot->device() == device) continue;
    const bool rg = slot->requires_grad();
    Tensor moved = slot->detach().to(device);
    moved.set_name(name);
    moved.requires_grad_(rg);
    *slot = moved;
  }
}

int64_t Module::set_requires_grad(const std::string& prefix, bool on) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, slots);
  int64_t matched = 0;
  for (auto& [name, slot] : slots) {
    if (!under_prefix(name, prefix)) continue;
    slot->requires_grad_(on);
    ++matched;
  }
  if (matched == 0) {
    std::string top;
    for (const auto& [n, _] : children_) top += (top.empty() ? "" : ", ") + n;
    throw Error(::ember::detail::cat("nn::", type_name_, ": ", on ? "unfreeze" : "freeze", "('", prefix,
                            "') matches no parameter (top-level children: ", top, ")"));
  }
  return matched;
}

int64_t Module::freeze(const std::string& prefix) { return set_requires_grad(prefix, false); }
int64_t Module::unfreeze(const std::string& prefix) { return set_requires_grad(prefix, true); }

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [_, t] : named_parameters()) n += t.numel();
  return n;
}

int64_t Module::num_trainable_parameters() const {
  int64_t n = 0;
  for (auto& [_, t] : named_parameters())
    if (t.requires_grad()) n += t.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [_, t] : named_parameters()) t.zero_grad();
}

}  // namespace ember::nn
