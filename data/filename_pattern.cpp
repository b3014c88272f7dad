#include "data/filename_pattern.h"

#include <algorithm>

#include "engine/error.h"

namespace ember::data {

FilenamePattern::FilenamePattern(const std::string& pattern, std::vector<std::string> suffixes)
    : pattern_(pattern), suffixes_(std::move(suffixes)) {
  std::string literal;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '<') {
      size_t close = pattern.find('>', i);
      EMBER_CHECK(close != std::string::npos, "filename pattern '", pattern, "': '<' without '>'");
      std::string name = pattern.substr(i + 1, close - i - 1);
      EMBER_CHECK(!name.empty(), "filename pattern '", pattern, "': empty <> placeholder");
      EMBER_CHECK(fields_.empty() || !literal.empty(), "filename pattern '", pattern,
                  "': two placeholders need a literal separator between them");
      literals_.push_back(literal);
      literal.clear();
      fields_.push_back(name);
      i = close + 1;
    } else {
      literal += pattern[i++];
    }
  }
  literals_.push_back(literal);
  EMBER_CHECK(!fields_.empty(), "filename pattern '", pattern, "' has no <field> placeholder");
  std::sort(suffixes_.begin(), suffixes_.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
}

std::map<std::string, std::string> FilenamePattern::parse(const std::string& filename) const {
  std::string name = filename;
  if (size_t slash = name.find_last_of("/\\"); slash != std::string::npos) name = name.substr(slash + 1);
  // Strip the longest accepted suffix.
  bool suffix_ok = suffixes_.empty();
  for (const auto& s : suffixes_) {
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      name.resize(name.size() - s.size());
      suffix_ok = true;
      break;
    }
  }
  if (!suffix_ok) {
    std::string list;
    for (const auto& s : suffixes_) list += (list.empty() ? "" : ", ") + s;
    throw Error(detail::cat("file name '", filename, "' does not end with an accepted suffix (", list, ")"));
  }
  std::map<std::string, std::string> out;
  size_t pos = 0;
  for (size_t f = 0; f < fields_.size(); ++f) {
    const std::string& before = literals_[f];
    if (name.compare(pos, before.size(), before) != 0)
      throw Error(detail::cat("file name '", filename, "' does not match pattern '", pattern_, "': expected '",
                              before, "' before field <", fields_[f], ">"));
    pos += before.size();
    const std::string& after = literals_[f + 1];
    size_t end = after.empty() ? name.size() : name.find(after, pos);
    if (f + 1 == fields_.size() && !after.empty()) end = name.rfind(after);
    if (end == std::string::npos || end < pos)
      throw Error(detail::cat("file name '", filename, "' does not match pattern '", pattern_, "': field <",
                              fields_[f + 1 < fields_.size() ? f + 1 : f], "> is missing"));
    std::string value = name.substr(pos, end - pos);
    if (value.empty())
      throw Error(detail::cat("file name '", filename, "' does not match pattern '", pattern_, "': field <",
                              fields_[f], "> is empty"));
    out[fields_[f]] = value;
    pos = end;
  }
  const std::string& tail = literals_.back();
  if (name.compare(pos, std::string::npos, tail) != 0)
    throw Error(detail::cat("file name '", filename, "' does not match pattern '", pattern_,
                            "': unexpected text after the last field"));
  return out;
}

}  // namespace ember::data
