// Labels encoded in file names, e.g. UTKFace's "<age>_<gender>_<race>_<datetime>.jpg" (and the
// original release's "....jpg.chip.jpg"). A pattern is a sequence of <field> placeholders and
// literal separators; a name must end with one of the accepted suffixes.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace ember::data {

class FilenamePattern {
 public:
  FilenamePattern() = default;
  // pattern: "<age>_<gender>_<race>_<datetime>"; suffixes: {".jpg.chip.jpg", ".jpg"}.
  FilenamePattern(const std::string& pattern, std::vector<std::string> suffixes);

  bool empty() const { return fields_.empty(); }
  const std::vector<std::string>& fields() const { return fields_; }
  const std::string& pattern() const { return pattern_; }

  // field -> value for a base name (directories are stripped). Throws with a message naming the
  // file and the first missing or empty field, e.g. a UTKFace name with only two fields.
  std::map<std::string, std::string> parse(const std::string& filename) const;

 private:
  std::string pattern_;
  std::vector<std::string> fields_;    // placeholder names, in order
  std::vector<std::string> literals_;  // literals_[i] precedes fields_[i]; one extra after the last
  std::vector<std::string> suffixes_;  // longest first so ".jpg.chip.jpg" wins over ".jpg"
};

}  // namespace ember::data
