// Module::summary: a Keras-style table built by watching one forward pass.
//
// Shapes are not computed symbolically: the model runs once on zeros (eval mode, no autograd)
// while an observer notes each leaf module's output shape as it is called. That keeps summary()
// correct for any model the forward pass handles, at the cost of one real forward.
#include <iomanip>
#include <map>
#include <sstream>

#include "engine/autograd.h"
#include "nn/module.h"

namespace ember::nn {
namespace {

struct Row {
  std::string name, type, shape;
  int64_t params = 0;
};

struct Recorder {
  std::map<const Module*, std::string> names;  // leaf modules only
  std::vector<Row> rows;
};

int64_t own_parameter_count(const Module& m) {
  // Parameters of m minus those of its children (leaves have no children, so all of them).
  int64_t n = m.num_parameters();
  for (const auto& [_, c] : m.children()) n -= c->num_parameters();
  return n;
}

void observe(void* context, const Module& m, const std::vector<Tensor>& outputs) {
  auto* rec = static_cast<Recorder*>(context);
  auto it = rec->names.find(&m);
  if (it == rec->names.end()) return;  // containers: their leaves already have rows
  std::string shapes;
  for (const auto& y : outputs) shapes += (shapes.empty() ? "" : ", ") + shape_str(y.shape());
  rec->rows.push_back({it->second, m.type_name(), shapes, own_parameter_count(m)});
}

std::string pad(const std::string& s, size_t width) { return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' '); }

// Restores the observer and the training mode even when the forward throws.
struct SummaryScope {
  Module& model;
  bool was_training;
  SummaryScope(Module& m, Recorder& rec) : model(m), was_training(m.is_training()) {
    detail::set_call_observer(&observe, &rec);
    model.eval();
  }
  ~SummaryScope() {
    detail::set_call_observer(nullptr, nullptr);
    model.train(was_training);
  }
};

}  // namespace

std::string Module::summary(const Shape& input_shape) { return summary(std::vector<Shape>{input_shape}); }

std::string Module::summary(const std::vector<Shape>& input_shapes) {
  Recorder rec;
  for (auto& [name, m] : named_modules())
    if (m->children().empty() && m != this) rec.names[m] = name;
  if (children_.empty()) rec.names[this] = type_name_;  // a lone layer summarises itself
  std::vector<Tensor> inputs;
  for (const auto& s : input_shapes) inputs.push_back(Tensor::zeros(s));
  {
    SummaryScope scope(*this, rec);
    NoGradGuard no_grad;
    call_many(inputs);
  }
  size_t w_name = 28, w_shape = 26;
  for (const auto& r : rec.rows) {
    w_name = std::max(w_name, r.name.size() + r.type.size() + 5);
    w_shape = std::max(w_shape, r.shape.size() + 2);
  }
  const size_t width = w_name + w_shape + 14;
  std::ostringstream os;
  os << "Model: \"" << type_name_ << "\"\n" << std::string(width, '_') << "\n";
  os << pad(" Layer (type)", w_name) << pad("Output Shape", w_shape) << "Param #\n" << std::string(width, '=') << "\n";
  for (const auto& r : rec.rows)
    os << pad(" " + r.name + " (" + r.type + ")", w_name) << pad(r.shape, w_shape) << with_commas(r.params) << "\n";
  const int64_t total = num_parameters(), trainable = num_trainable_parameters();
  int64_t buffer_elems = 0;
  for (auto& [_, b] : named_buffers()) buffer_elems += b.numel();
  os << std::string(width, '=') << "\n";
  os << "Total params: " << with_commas(total) << "\n";
  os << "Trainable params: " << with_commas(trainable) << "\n";
  os << "Non-trainable params: " << with_commas(total - trainable) << "\n";
  if (buffer_elems > 0) os << "Buffers (running stats, not params): " << with_commas(buffer_elems) << "\n";
  os << std::string(width, '_') << "\n";
  return os.str();
}

}  // namespace ember::nn
