// Kernel variants, selectable at run time.
//
// Every op with more than one implementation keeps them side by side in one VariantTable,
// ordered fastest first with the plain reference ("ref") last. The active variant is, in order:
//   1. the one forced through set_variant(op, name) (API, used by tests and benchmarks),
//   2. the one named by the environment variable EMBER_<OP> (e.g. EMBER_GEMM=ref),
//   3. the first variant whose CPU/device requirements are met (CPUID: AVX-512, AVX2, scalar).
// One checker (tests/test_kernel_variants.cpp) runs every variant of every table against "ref".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::kernels {

enum class Isa { Scalar = 0, AVX2 = 1, AVX512 = 2 };
Isa cpu_isa();                       // best ISA the CPU and OS support (CPUID + XGETBV)
const char* isa_name(Isa isa);
bool has_avx2();                     // AVX2 + FMA usable
bool has_avx512();                   // AVX-512 F/BW/VL/DQ usable

// Registry of tables by op name, so tools and tests can list and force variants generically.
std::vector<std::string> registered_ops();
std::vector<std::string> variants(const std::string& op);           // every variant name
std::vector<std::string> available_variants(const std::string& op); // those this machine can run
std::string active_variant(const std::string& op);
// Throws std::invalid_argument naming the op and the known variants if either is unknown,
// or std::runtime_error if the variant cannot run on this machine. "" restores the default.
void set_variant(const std::string& op, const std::string& name);

namespace detail {
struct TableBase {
  std::string op;
  std::string forced;  // from set_variant
  virtual ~TableBase() = default;
  virtual std::vector<std::string> names() const = 0;
  virtual bool available(const std::string& name) const = 0;
  virtual std::string active() const = 0;
};
void register_table(TableBase* table);
void ensure_builtin_tables();  // kernels/builtin_tables.cpp
std::string env_choice(const std::string& op);  // value of EMBER_<OP> (upper-cased op), or ""
}  // namespace detail

template <class Fn>
struct Variant {
  const char* name;
  Fn fn;
  bool (*available)();  // nullptr: always available
};

template <class Fn>
class VariantTable : public detail::TableBase {
 public:
  VariantTable(const char* op_name, std::vector<Variant<Fn>> list) : list_(std::move(list)) {
    op = op_name;
    detail::register_table(this);
  }
  // The function to call now. Cheap enough to call per op invocation.
  Fn get() const { return find(active()).fn; }
  std::string active() const override {
    if (!forced.empty()) return forced;
    std::string env = detail::env_choice(op);
    if (!env.empty() && has(env) && available(env)) return env;
    for (const auto& v : list_)
      if (!v.available || v.available()) return v.name;
    return list_.back().name;
  }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& v : list_) out.push_back(v.name);
    return out;
  }
  bool available(const std::string& name) const override {
    const auto& v = find(name);
    return !v.available || v.available();
  }

 private:
  bool has(const std::string& name) const {
    for (const auto& v : list_)
      if (name == v.name) return true;
    return false;
  }
  const Variant<Fn>& find(const std::string& name) const {
    for (const auto& v : list_)
      if (name == v.name) return v;
    return list_.back();
  }
  std::vector<Variant<Fn>> list_;
};

}  // namespace ember::kernels
