// RFC 4180 edge cases of data/csv: quoting, escapes, embedded separators, line ends, BOM, errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/csv.h"
#include "engine/error.h"
#include "test_data_util.h"

using namespace ember::data;
using ::testing::HasSubstr;

TEST(DataCsv, PlainRowsAndLineNumbers) {
  CsvTable t = parse_csv("a,b\n1,2\n3,4\n", "plain.csv");
  ASSERT_EQ(t.header, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t.num_rows(), 2);
  EXPECT_EQ(t.rows[1][1], "4");
  EXPECT_EQ(t.lines[0], 2);
  EXPECT_EQ(t.lines[1], 3);
  EXPECT_EQ(t.column("b"), 1);
}

TEST(DataCsv, QuotesEscapesEmbeddedCommaAndNewline) {
  CsvTable t = parse_csv("id,text\n1,\"hello, world\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,after\n", "q.csv");
  ASSERT_EQ(t.num_rows(), 4);
  EXPECT_EQ(t.rows[0][1], "hello, world");
  EXPECT_EQ(t.rows[1][1], "say \"hi\"");
  EXPECT_EQ(t.rows[2][1], "two\nlines");
  EXPECT_EQ(t.rows[3][1], "after");
  EXPECT_EQ(t.lines[2], 4);  // the multi-line row starts on line 4 ...
  EXPECT_EQ(t.lines[3], 6);  // ... so the next one is on line 6
}

TEST(DataCsv, CrlfBomEmptyFieldsAndNoTrailingNewline) {
  CsvTable t = parse_csv("\xEF\xBB\xBFx,y,z\r\n1,,3\r\n\"\",b,\r\n7,8,9", "crlf.csv");
  ASSERT_EQ(t.header[0], "x");  // BOM stripped from the first column name
  ASSERT_EQ(t.num_rows(), 3);
  EXPECT_EQ(t.rows[0][1], "");
  EXPECT_EQ(t.rows[1][0], "");
  EXPECT_EQ(t.rows[1][2], "");
  EXPECT_EQ(t.rows[2][2], "9");
  EXPECT_EQ(t.lines[2], 4);
}

TEST(DataCsv, UnbalancedQuoteNamesFileAndRow) {
  try {
    parse_csv("a,b\n1,2\n3,\"open\n4,5\n", "bad.csv");
    FAIL() << "expected an error";
  } catch (const ember::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad.csv"));
    EXPECT_THAT(e.what(), HasSubstr("unbalanced quote"));
    EXPECT_THAT(e.what(), HasSubstr("line 3"));
    EXPECT_THAT(e.what(), HasSubstr("column 2"));
  }
}

TEST(DataCsv, RaggedRowIsAnError) {
  try {
    parse_csv("a,b,c\n1,2,3\n4,5\n", "ragged.csv");
    FAIL() << "expected an error";
  } catch (const ember::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("ragged.csv"));
    EXPECT_THAT(e.what(), HasSubstr("line 3"));
    EXPECT_THAT(e.what(), HasSubstr("2 fields"));
  }
  EXPECT_THROW(parse_csv("a,b\n1,2,3\n", "long.csv"), ember::Error);
}

TEST(DataCsv, EmptyFileAndHeaderOnly) {
  EXPECT_THROW(parse_csv("", "empty.csv"), ember::Error);
  EXPECT_THROW(parse_csv("\xEF\xBB\xBF", "bom_only.csv"), ember::Error);
  CsvTable t = parse_csv("a,b\n", "header_only.csv");
  EXPECT_EQ(t.num_rows(), 0);
  EXPECT_EQ(t.header.size(), 2u);
}

TEST(DataCsv, TextAfterClosingQuoteAndStrayQuote) {
  EXPECT_THROW(parse_csv("a\n\"x\"y\n", "after.csv"), ember::Error);
  EXPECT_THROW(parse_csv("a\nx\"y\n", "stray.csv"), ember::Error);
}

TEST(DataCsv, MissingColumnNamesFile) {
  CsvTable t = parse_csv("a,b\n1,2\n", "cols.csv");
  try {
    t.column("c");
    FAIL();
  } catch (const ember::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cols.csv"));
    EXPECT_THAT(e.what(), HasSubstr("'c'"));
  }
}

TEST(DataCsv, EscapeRoundTrip) {
  const std::vector<std::string> fields = {"plain", "with,comma", "with \"quote\"", "two\r\nlines", ""};
  std::string text = "f\n";
  for (const auto& f : fields) text += csv_escape(f) + "\n";
  // An empty unquoted field on its own line reads as a blank line, so quote it explicitly.
  text.replace(text.size() - 1, 1, "\"\"\n");
  CsvTable t = parse_csv(text, "roundtrip.csv");
  ASSERT_EQ(t.num_rows(), 4);  // the "" row is a blank single-column row and is skipped
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t.rows[i][0], fields[i]);
}

TEST(DataCsv, ReadFileMissing) {
  try {
    read_csv("/nonexistent/ember/file.csv");
    FAIL();
  } catch (const ember::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/ember/file.csv"));
  }
}
