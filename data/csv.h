// RFC 4180 CSV reading: quoted fields, "" escapes, commas and newlines inside quotes, CRLF or LF
// line ends, an optional UTF-8 byte-order mark. Every row must have as many fields as the header;
// errors name the file, the 1-based line where the row starts and, where known, the column.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::data {

struct CsvTable {
  std::string source;                         // file name used in error messages
  std::vector<std::string> header;            // column names
  std::vector<std::vector<std::string>> rows; // rows[r][c], without the header
  std::vector<int64_t> lines;                 // lines[r]: 1-based line where row r starts

  int64_t num_rows() const { return int64_t(rows.size()); }
  // Index of a column; throws naming the file and the missing column.
  int64_t column(const std::string& name) const;
  bool has_column(const std::string& name) const;
};

// Parses CSV text. `source` is only used in error messages. An empty text (or only a BOM) is an
// error: a data file without even a header is almost always a mistake.
CsvTable parse_csv(const std::string& text, const std::string& source);
// Reads and parses a file; throws naming the path when it cannot be opened.
CsvTable read_csv(const std::string& path);

// Quotes a field when it contains a comma, quote or line break (for writers of id,set files).
std::string csv_escape(const std::string& field);

}  // namespace ember::data
