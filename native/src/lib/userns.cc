#include "userns.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "spec.h"

namespace berth {

int prepare_userns_dirs(const Spec& spec, const std::string& dir, Error* e) {
  // The container dir stays closed to the host's other users (it holds the spec's env values
  // and the logs); the mapped root only needs to pass through it, as its group.
  if (::chown(dir.c_str(), static_cast<uid_t>(-1), spec.gid_map_base) < 0)
    return fail(e, errno, "chown", dir);
  if (::chmod(dir.c_str(), 0710) < 0) return fail(e, errno, "chmod", dir);
  for (const char* sub : {"/upper", "/work", "/hostname", "/hosts", "/resolv.conf"}) {
    std::string p = dir + sub;
    if (::chown(p.c_str(), spec.uid_map_base, spec.gid_map_base) < 0 && errno != ENOENT)
      return fail(e, errno, "chown", p);
  }
  return 0;
}

int write_id_maps(pid_t pid, const Spec& spec, Error* e) {
  std::string proc = "/proc/" + std::to_string(pid);
  std::string size = " " + std::to_string(spec.id_map_size) + "\n";
  if (int rc = write_file(proc + "/uid_map", "0 " + std::to_string(spec.uid_map_base) + size, e);
      rc < 0) return rc;
  return write_file(proc + "/gid_map", "0 " + std::to_string(spec.gid_map_base) + size, e);
}

}  // namespace berth
