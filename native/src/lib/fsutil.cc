#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unique_fd.h"

namespace berth {

namespace {
constexpr size_t MAX_SMALL_FILE_BYTES = 64 * 1024;
}

int write_file(const std::string& path, const std::string& data, Error* e) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return fail(e, errno, "open", path);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(e, errno, "write", path);
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

int write_file_atomic(const std::string& path, const std::string& data, Error* e) {
  std::string tmp = path + ".tmp";
  if (int rc = write_file(tmp, data, e); rc < 0) return rc;
  if (::rename(tmp.c_str(), path.c_str()) < 0) return fail(e, errno, "rename", path);
  return 0;
}

int read_file(const std::string& path, std::string* out, Error* e) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail(e, errno, "open", path);
  out->clear();
  char buf[4096];
  while (out->size() < MAX_SMALL_FILE_BYTES) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(e, errno, "read", path);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  return 0;
}

int mkdir_p(const std::string& path, unsigned mode, Error* e) {
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return fail(e, errno, "mkdir", path);
  // Only walk up when the fast path failed: the common case (parents exist) costs one syscall.
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return fail(e, ENOENT, "mkdir", path);
  if (int rc = mkdir_p(path.substr(0, slash), mode, e); rc < 0) return rc;
  if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", path);
  return 0;
}

std::string errno_name(int err) {
  const char* name = ::strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

}  // namespace berth
