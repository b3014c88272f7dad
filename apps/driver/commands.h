// The driver's subcommands, callable from the CLI and from tests.
#pragma once
#include <string>
#include <vector>

namespace ember::driver {

struct CommandArgs {
  std::string experiment;               // path, or "" for the embedded default
  std::string out_dir;
  std::string run_dir;
  std::vector<std::string> milestones;  // train: which ones
  std::string device;                   // "" keeps the experiment's; cpu | cuda overrides it
  bool quiet = false;
};

int cmd_run(const CommandArgs& a);     // run / train
int cmd_embed(const CommandArgs& a);
int cmd_eval(const CommandArgs& a);
int cmd_report(const CommandArgs& a);

}  // namespace ember::driver
