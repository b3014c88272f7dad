// Runs every command shown in docs/walkthrough/*.md, so the walkthrough cannot rot.
//
// A runnable block is a fenced block opened by exactly  ```sh title="run"  and closed by  ``` .
// Each block is one shell script (run with `sh -e`, so every line must succeed) and one test case,
// named after its chapter and line. Scripts refer to the build tree as $EMBER_BUILD and to the
// source tree as $EMBER_SOURCE; they run in a fresh temporary directory, with a 60 s limit.
// $EMBER_BUILD is the directory above this executable's (tests/), unless the environment sets it.
//
// Also checked: the index links every chapter, every chapter has at least one runnable block and
// links to the program that measured its numbers (bench/*.cpp, or apps/driver/explain.cpp), and
// every source path the chapters name exists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const fs::path kSource = EMBER_SOURCE_DIR;
const fs::path kDocs = kSource / "docs" / "walkthrough";
constexpr int kTimeoutSeconds = 60;

struct DocBlock {
  std::string file;  // chapter file name
  int line = 0;      // 1-based line of the opening fence
  std::string script;
};

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<fs::path> chapters() {
  std::vector<fs::path> out;
  if (!fs::is_directory(kDocs)) return out;
  for (const auto& e : fs::directory_iterator(kDocs))
    if (e.path().extension() == ".md") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<DocBlock> runnable_blocks() {
  std::vector<DocBlock> blocks;
  for (const auto& path : chapters()) {
    std::ifstream f(path);
    std::string line;
    int n = 0;
    DocBlock* open = nullptr;
    while (std::getline(f, line)) {
      ++n;
      if (!open && line == "```sh title=\"run\"") {
        blocks.push_back({path.filename().string(), n, ""});
        open = &blocks.back();
      } else if (open && line.rfind("```", 0) == 0) {
        open = nullptr;
      } else if (open) {
        open->script += line + "\n";
      }
    }
    if (open) open->script.clear();  // never closed: the block fails as empty, naming its line
  }
  return blocks;
}

fs::path build_dir() {
  if (const char* env = std::getenv("EMBER_BUILD")) return fs::absolute(env);
  return fs::read_symlink("/proc/self/exe").parent_path().parent_path();
}

std::string tail(const std::string& s, size_t n) { return s.size() <= n ? s : "...\n" + s.substr(s.size() - n); }

class DocCommand : public ::testing::TestWithParam<DocBlock> {};

TEST_P(DocCommand, RunsSuccessfully) {
  const DocBlock& b = GetParam();
  ASSERT_FALSE(b.script.empty()) << b.file << ":" << b.line << ": empty or unclosed runnable block";
  if (!EMBER_DOCS_HAVE_APPS && b.script.find("/apps/") != std::string::npos)
    GTEST_SKIP() << b.file << ":" << b.line << " runs apps/ember, which this build leaves out (-DEMBER_BUILD_APPS=OFF)";
  if (!EMBER_DOCS_HAVE_BENCH && b.script.find("/bench/") != std::string::npos)
    GTEST_SKIP() << b.file << ":" << b.line << " runs a benchmark, which this build leaves out (-DEMBER_BUILD_BENCH=OFF)";
  const fs::path work = fs::temp_directory_path() / ("ember-docs-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(b.line) + "-" + b.file);
  fs::create_directories(work);
  const fs::path script = work / "block.sh", log = work / "output.txt";
  std::ofstream(script) << b.script;
  const std::string cmd = "cd '" + work.string() + "' && EMBER_BUILD='" + build_dir().string() + "' EMBER_SOURCE='" +
                          kSource.string() + "' timeout " + std::to_string(kTimeoutSeconds) + " sh -e block.sh > '" +
                          log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  const std::string output = read_text(log);
  fs::remove_all(work);
  EXPECT_NE(code, 124) << b.file << ":" << b.line << ": took longer than " << kTimeoutSeconds << " s:\n" << b.script;
  EXPECT_EQ(code, 0) << b.file << ":" << b.line << ": exit code " << code << "\n--- script\n"
                     << b.script << "--- output\n"
                     << tail(output, 4000);
}

std::string block_name(const ::testing::TestParamInfo<DocBlock>& info) {
  std::string name = info.param.file.substr(0, info.param.file.find('.')) + "_line" + std::to_string(info.param.line);
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Walkthrough, DocCommand, ::testing::ValuesIn(runnable_blocks()), block_name);

TEST(DocStructure, IndexLinksEveryChapterAndChaptersAreTiedToCodeAndBenchmarks) {
  auto files = chapters();
  ASSERT_FALSE(files.empty()) << "no chapters under " << kDocs;
  const std::string index = read_text(kDocs / "README.md");
  const std::regex chapter_name(R"(^\d\d-.*\.md$)");
  // The measuring program: a benchmark, or explain itself for the per-op numbers it prints.
  const std::regex bench_link(R"((bench/[A-Za-z0-9_/]+|apps/driver/explain)\.cpp)");
  int numbered = 0;
  std::set<std::string> with_blocks;
  for (const auto& b : runnable_blocks()) with_blocks.insert(b.file);
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    if (!std::regex_match(name, chapter_name)) continue;
    ++numbered;
    EXPECT_NE(index.find("(" + name + ")"), std::string::npos) << "README.md does not link " << name;
    EXPECT_TRUE(with_blocks.count(name)) << name << " has no ```sh title=\"run\" block";
    const std::string text = read_text(path);
    EXPECT_TRUE(std::regex_search(text, bench_link)) << name << " links no benchmark (bench/*.cpp or apps/driver/explain.cpp)";
  }
  EXPECT_EQ(numbered, 10);
}

TEST(DocStructure, EverySourcePathNamedInTheDocsExists) {
  // A repository path: starts a word (not inside shared/data/..., not after $EMBER_BUILD/).
  const std::regex source_path(
      R"((?:^|[^A-Za-z0-9_/.$])((?:engine|kernels|nn|data|apps|bench|tests|tools)/[A-Za-z0-9_./-]*[A-Za-z0-9_]\.(?:cuh|cpp|cu|h|sh))(?![A-Za-z0-9_]))");
  for (const auto& path : chapters()) {
    const std::string text = read_text(path);
    for (std::sregex_iterator it(text.begin(), text.end(), source_path), end; it != end; ++it)
      EXPECT_TRUE(fs::exists(kSource / it->str(1))) << path.filename() << " names " << it->str(1) << ", which does not exist";
  }
}

}  // namespace
