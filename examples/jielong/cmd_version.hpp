#pragma once

#include <cstdio>

#include "args.hpp"
#include "jielong/config.hpp"

namespace jielong::cli {

inline int cmd_version(Args& args) {
  Flags flags("version", "", "Print the version of jielong.");
  if (auto rc = flags.parse(args)) return *rc;
  std::printf("jielong %s\n", JIELONG_VERSION_STRING);
  return 0;
}

}  // namespace jielong::cli
