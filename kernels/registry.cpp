#include "kernels/registry.h"

#include <algorithm>
#include <cctype>
#include <cpuid.h>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

namespace ember::kernels {
namespace {

std::map<std::string, detail::TableBase*>& tables() {
  static std::map<std::string, detail::TableBase*> t;
  return t;
}

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

struct CpuFeatures {
  bool avx2 = false, avx512 = false;
  CpuFeatures() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    bool ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    avx2 = ymm_os && fma && (b & (1u << 5));
    bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    avx512 = avx2 && zmm_os && f && dq && bw && vl;
  }
};
const CpuFeatures& features() {
  static CpuFeatures f;
  return f;
}

detail::TableBase& table(const std::string& op) {
  detail::ensure_builtin_tables();
  auto it = tables().find(op);
  if (it == tables().end()) {
    std::string known;
    for (auto& [name, _] : tables()) known += (known.empty() ? "" : ", ") + name;
    throw std::invalid_argument("ember: unknown kernel op '" + op + "' (known: " + known + ")");
  }
  return *it->second;
}

}  // namespace

bool has_avx2() { return features().avx2; }
bool has_avx512() { return features().avx512; }
Isa cpu_isa() { return has_avx512() ? Isa::AVX512 : has_avx2() ? Isa::AVX2 : Isa::Scalar; }
const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::AVX512: return "avx512";
    case Isa::AVX2: return "avx2";
    default: return "scalar";
  }
}

namespace detail {
void register_table(TableBase* t) { tables()[t->op] = t; }
std::string env_choice(const std::string& op) {
  std::string var = "EMBER_";
  for (char ch : op) var += char(std::toupper(static_cast<unsigned char>(ch)));
  const char* v = std::getenv(var.c_str());
  return v ? std::string(v) : std::string();
}
}  // namespace detail

std::vector<std::string> registered_ops() {
  detail::ensure_builtin_tables();
  std::vector<std::string> out;
  for (auto& [name, _] : tables()) out.push_back(name);
  return out;
}
std::vector<std::string> variants(const std::string& op) { return table(op).names(); }
std::vector<std::string> available_variants(const std::string& op) {
  auto& t = table(op);
  std::vector<std::string> out;
  for (auto& n : t.names())
    if (t.available(n)) out.push_back(n);
  return out;
}
std::string active_variant(const std::string& op) { return table(op).active(); }
void set_variant(const std::string& op, const std::string& name) {
  auto& t = table(op);
  if (name.empty()) {
    t.forced.clear();
    return;
  }
  auto names = t.names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string known;
    for (auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("ember: kernel op '" + op + "' has no variant '" + name + "' (variants: " + known + ")");
  }
  if (!t.available(name))
    throw std::runtime_error("ember: variant '" + name + "' of kernel op '" + op + "' cannot run on this CPU (" +
                             isa_name(cpu_isa()) + ")");
  t.forced = name;
}

}  // namespace ember::kernels
