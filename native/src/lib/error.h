// error.h: the one error shape of the native core. Every fallible call returns 0 or -errno and
// fills an Error with the errno, the step that failed and the path it failed on; the library
// never prints, callers decide how to report.
#pragma once

#include <string>

namespace berth {

// Error describes one failed system call: errno, the step (e.g. "mount overlay") and its path.
struct Error {
  int err = 0;
  std::string step;
  std::string path;
};

// fail fills e and returns -err so call sites can write `return fail(e, errno, "mkdir", p);`.
inline int fail(Error* e, int err, const char* step, const std::string& path = std::string()) {
  if (e != nullptr) {
    e->err = err;
    e->step = step;
    e->path = path;
  }
  return -err;
}

}  // namespace berth
