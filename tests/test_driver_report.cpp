// The HTML report renders in a real browser: headless Chromium parses it (the DOM it dumps must
// hold every chart with drawn content) and paints it (the screenshot must not be blank).
// Skips with a message when Chromium is not installed.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "apps/driver/metrics.h"
#include "apps/driver/report.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

namespace fs = std::filesystem;
using namespace ember::driver;

namespace {

const char* chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(p)) return p;
  return nullptr;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

int count(const std::string& s, const std::string& re) {
  std::regex r(re);
  return int(std::distance(std::sregex_iterator(s.begin(), s.end(), r), std::sregex_iterator()));
}

Report sample_report() {
  Report rep;
  rep.title = "report test";
  rep.dataset = "synthetic";
  rep.split_file = "split.csv";
  MilestoneResult r;
  r.id = "M1";
  r.title = "MLP <tabular> & co";  // must be escaped
  r.target = "label";
  r.task = "binary";
  r.primary_metric = "roc_auc";
  r.class_names = {"neg", "pos"};
  std::vector<int64_t> yt = {0, 0, 1, 1, 1, 0}, yp = {0, 1, 1, 1, 0, 0};
  std::vector<std::vector<double>> pr = {{.9, .1}, {.4, .6}, {.2, .8}, {.3, .7}, {.6, .4}, {.8, .2}};
  r.test = to_json(classification_metrics(yt, yp, pr, 2), r.class_names);
  for (int e = 1; e <= 5; ++e) r.history.push_back({e, 1.0 / e, 1.2 / e, 0.5 + 0.08 * e, 0.5 + 0.07 * e, 0.1});
  r.subgroups["sex"]["F"] = {{"n", 3}, {"accuracy", 0.66}, {"balanced_accuracy", 0.5}, {"roc_auc", 0.7}};
  r.subgroups["sex"]["M"] = {{"n", 3}, {"accuracy", 0.75}, {"balanced_accuracy", 0.7}, {"roc_auc", 0.8}};
  rep.results.push_back(r);
  return rep;
}

}  // namespace

TEST(DriverReport, HtmlIsSelfContainedAndEscaped) {
  std::string html = render_html(sample_report());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // The only URL allowed is the SVG namespace name, which browsers never fetch.
  std::string stripped = std::regex_replace(html, std::regex("xmlns='http://www.w3.org/2000/svg'"), "");
  EXPECT_EQ(stripped.find("http"), std::string::npos) << "the report must work offline";
  EXPECT_EQ(count(html, "src=") + count(html, "href="), 0) << "the report must not load anything";
  EXPECT_NE(html.find("MLP &lt;tabular&gt; &amp; co"), std::string::npos);
  EXPECT_EQ(count(html, "<svg"), 4);  // loss, metric, confusion matrix, subgroup bars
}

TEST(DriverReport, ChartsRenderInHeadlessChromium) {
  const char* chrome = chromium();
  if (!chrome) GTEST_SKIP() << "chromium not installed (apt-get install chromium): browser rendering not checked";
  fs::path dir = fs::temp_directory_path() / ("ember_report_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_report(sample_report(), dir.string());
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
      " --disable-component-update --disable-sync --user-data-dir=" + (dir / "profile").string();
  const std::string url = "file://" + (dir / "report.html").string();
  std::string dom = run(std::string("timeout 90 ") + chrome + flags + " --dump-dom " + url + " 2>/dev/null");
  ASSERT_FALSE(dom.empty()) << "chromium produced no DOM";
  EXPECT_EQ(count(dom, "<svg"), 4) << "every chart must survive parsing";
  EXPECT_EQ(count(dom, "<polyline"), 4) << "two learning curves per line chart";
  EXPECT_EQ(count(dom, "class=\"cell\""), 4) << "2x2 confusion matrix";
  EXPECT_GE(count(dom, "class=\"bar\""), 6) << "two groups x three metrics";
  EXPECT_NE(dom.find("id=\"comparison\""), std::string::npos);

  const fs::path png = dir / "shot.png";
  run(std::string("timeout 90 ") + chrome + flags + " --window-size=1200,1600 --screenshot=" + png.string() + " " + url +
      " 2>/dev/null");
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(png.string().c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr) << "no screenshot written";
  // Count pixels that are neither white nor near-white: charts, text and bars paint thousands.
  int64_t inked = 0, coloured = 0;
  for (int64_t i = 0; i < int64_t(w) * h; ++i) {
    const unsigned char *p = px + 3 * i;
    if (p[0] < 200 || p[1] < 200 || p[2] < 200) ++inked;
    if (std::abs(p[0] - p[2]) > 60) ++coloured;  // the palette's blue/orange, not grey text
  }
  stbi_image_free(px);
  EXPECT_GT(inked, 20000) << "the page looks blank";
  EXPECT_GT(coloured, 2000) << "no coloured chart marks were painted";
  fs::remove_all(dir);
}
