// berth-init: the container's PID 1 (see src/lib/init.h). `berth-init COMMAND [ARG...]`.
// Linked static, so it runs in any image; the shim binds it read-only at /dev/init.
#include <unistd.h>

#include <string>
#include <vector>

#include "../lib/init.h"

extern char** environ;

int main(int argc, char** argv) {
  if (argc < 2) {
    static const char usage[] = "usage: berth-init COMMAND [ARG...]\n";
    ssize_t ignored = ::write(2, usage, sizeof usage - 1);
    (void)ignored;
    return 2;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; e++) env.emplace_back(*e);
  return berth::run_init(args, env);
}
