// spec.h: the container spec the shim receives from the addon.
//
// Wire format (one function each side: parse_spec here, encodeShimSpec in
// agent/runtime/shim-spec.ts): UTF-8 text, one `key=value` per line; list keys repeat
// (`lower`, `arg`, `env`); in values `\` is written `\\` and a newline `\n`. Unknown keys are
// rejected so the two sides cannot drift silently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "error.h"

namespace berth {

// Spec is one container: identity, rootfs layers, process, limits and where its cgroup lives.
struct Spec {
  std::string id;
  std::string hostname;
  std::vector<std::string> lower_dirs;  // topmost first, joined by ':' for overlayfs
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t memory_bytes = 0;   // 0 = unlimited
  uint64_t cpu_millis = 0;     // 0 = unlimited; 1000 = one core
  uint64_t pids = 0;           // 0 = unlimited
  std::string cgroup_parent = "berth";
  std::string cgroup_root;     // empty: $BERTH_CGROUP_ROOT or /sys/fs/cgroup
  std::string cgroup_version;  // empty: detect from the root's filesystem; "v1" or "v2" forces
  uint64_t log_max_bytes = 10 * 1024 * 1024;
};

// parse_spec parses the wire format into out; a malformed line fails with EINVAL and the key.
int parse_spec(const std::string& text, Spec* out, Error* e);

}  // namespace berth
