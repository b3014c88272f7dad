#include "data/csv.h"

#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace ember::data {

int64_t CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return int64_t(i);
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "" : ", ") + h;
  throw Error(detail::cat(source, ": no column '", name, "' (columns: ", have, ")"));
}

bool CsvTable::has_column(const std::string& name) const {
  for (const auto& h : header)
    if (h == name) return true;
  return false;
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
  CsvTable table;
  table.source = source;
  size_t pos = 0;
  const size_t n = text.size();
  if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;  // UTF-8 BOM
  if (pos >= n) throw Error(detail::cat(source, ": empty CSV file (no header row)"));

  int64_t line = 1;  // current 1-based line number
  std::vector<std::string> row;
  std::string field;
  int64_t row_line = 1;
  bool header_done = false;

  auto finish_row = [&]() {
    row.push_back(std::move(field));
    field.clear();
    if (!header_done) {
      table.header = std::move(row);
      header_done = true;
    } else if (row.size() == 1 && row[0].empty()) {
      // A blank line (e.g. at the end of the file) is not a row.
    } else {
      if (row.size() != table.header.size())
        throw Error(detail::cat(source, ": row at line ", row_line, " has ", row.size(), " fields but the header has ",
                                table.header.size(), " (ragged row)"));
      table.rows.push_back(std::move(row));
      table.lines.push_back(row_line);
    }
    row.clear();
  };

  while (pos < n) {
    char ch = text[pos];
    if (field.empty() && ch == '"') {
      // Quoted field: runs to the closing quote; "" is one literal quote.
      const int64_t quote_line = line;
      ++pos;
      bool closed = false;
      while (pos < n) {
        char q = text[pos];
        if (q == '"') {
          if (pos + 1 < n && text[pos + 1] == '"') {
            field += '"';
            pos += 2;
            continue;
          }
          ++pos;
          closed = true;
          break;
        }
        if (q == '\n') ++line;
        field += q;
        ++pos;
      }
      if (!closed)
        throw Error(detail::cat(source, ": unbalanced quote in column ", row.size() + 1, " of the row at line ",
                                row_line, " (quote opened on line ", quote_line, ")"));
      // After the closing quote only a separator or a line end may follow.
      if (pos < n && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r')
        throw Error(detail::cat(source, ": unexpected character after closing quote in column ", row.size() + 1,
                                " at line ", line));
      continue;
    }
    if (ch == ',') {
      row.push_back(std::move(field));
      field.clear();
      ++pos;
    } else if (ch == '\r' || ch == '\n') {
      if (ch == '\r' && pos + 1 < n && text[pos + 1] == '\n') ++pos;
      ++pos;
      finish_row();
      ++line;
      row_line = line;
    } else {
      if (ch == '"')
        throw Error(detail::cat(source, ": stray quote inside unquoted field in column ", row.size() + 1, " at line ",
                                line));
      field += ch;
      ++pos;
    }
  }
  // Last row without a trailing newline.
  if (!row.empty() || !field.empty()) finish_row();
  if (!header_done) throw Error(detail::cat(source, ": empty CSV file (no header row)"));
  return table;
}

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(detail::cat("cannot open CSV file '", path, "'"));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_csv(ss.str(), path);
}

std::string csv_escape(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace ember::data
