// spec.h: the container spec the shim receives from the addon.
//
// Wire format (one function each side: parse_spec here, encodeShimSpec in
// agent/runtime/shim-spec.ts): UTF-8 text, one `key=value` per line; list keys repeat
// (`lower`, `arg`, `env`, `mount`, `tmpfs`, `file`, ...); in values `\` is written `\\` and a
// newline `\n`. Unknown keys are rejected so the two sides cannot drift silently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "error.h"
#include "security.h"

namespace berth {

// BindMount is a host path bound into the container (wire: `mount=SOURCE\tTARGET\tro|rw`).
struct BindMount {
  std::string source;  // host path, trusted (it comes from the agent)
  std::string target;  // container path, resolved inside the rootfs (see mounts.h)
  bool readonly = false;
};

// TmpfsMount is a fresh tmpfs at target (wire: `tmpfs=TARGET\tSIZE_BYTES\tMODE_OCTAL\tro|rw`).
struct TmpfsMount {
  std::string target;       // container path, resolved inside the rootfs
  uint64_t size_bytes = 0;  // > 0: the tmpfs's size= limit
  uint32_t mode = 01777;    // of its root directory
  bool readonly = false;
};

// ProjectedFile is content written into the container (secrets, configs) on a tmpfs that exists
// only in the container's mount namespace (wire: `file=TARGET\tMODE_OCTAL\tUID\tGID\tBASE64`).
struct ProjectedFile {
  std::string target;  // container path of the file, resolved inside the rootfs
  uint32_t mode = 0400;
  uint32_t uid = 0;    // container ids (mapped by the user namespace when there is one)
  uint32_t gid = 0;
  std::string content;  // decoded bytes
};

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
  // swap_bytes is swap allowed on top of memory_bytes; 0 = none (v1 memsw = memory + swap).
  uint64_t swap_bytes = 0;
  std::string cpus;            // cpuset cpus ("0-1,3"); empty = any cpu
  std::string cgroup_parent = "berth";
  std::string cgroup_root;     // empty: $BERTH_CGROUP_ROOT or /sys/fs/cgroup
  std::string cgroup_version;  // empty: detect from the root's filesystem; "v1" or "v2" forces
  uint64_t log_max_bytes = 10 * 1024 * 1024;
  // --- OCI bundles (berth-runtime); the agent leaves these at their defaults ---
  std::string rootfs_dir;      // non-empty: bind this directory as the rootfs instead of the overlay
  uint32_t namespaces = 0;     // 0: DEFAULT_NAMESPACES; else CLONE_NEW* bits (pid and mount required)
  // --- isolation and privileges (mounts.h, security.h, seccomp.h, userns.h) ---
  std::vector<std::string> cap_add;   // names (CAP_ optional, any case) or ALL, applied first
  std::vector<std::string> cap_drop;  // then these are removed
  std::vector<uint32_t> groups;       // supplementary gids; none by default
  std::vector<Rlimit> rlimits;        // NOFILE defaults to DEFAULT_NOFILE when not listed
  bool read_only_rootfs = false;
  bool seccomp = true;                // false only for debugging (`seccomp=unconfined`)
  bool user_namespace = false;        // container ids 0..id_map_size-1 -> host *_map_base..
  uint32_t uid_map_base = 100000;
  uint32_t gid_map_base = 100000;
  uint32_t id_map_size = 65536;
  std::vector<BindMount> mounts;
  std::vector<TmpfsMount> tmpfs;
  std::vector<ProjectedFile> files;
  std::string hosts;                  // /etc/hosts content; empty: localhost + hostname
  std::string resolv_conf;            // /etc/resolv.conf content; empty: the host's
  // init is the host path of berth-init (absolute); non-empty: it is bound read-only at
  // INIT_PATH_IN_CONTAINER and runs as PID 1 with args as its child (see init.h).
  std::string init;
};

// INIT_PATH_IN_CONTAINER is where the init binary is bound (podman's place for catatonit): on the
// container's own /dev tmpfs, so no image path is shadowed and a read-only rootfs does not matter.
constexpr const char* INIT_PATH_IN_CONTAINER = "/dev/init";

// WireField is one `key=value` line of the wire format, its value unescaped.
struct WireField {
  std::string key;
  std::string value;
};

// split_wire splits wire-format text into its fields (every request the shim reads uses the
// format); a non-empty line without '=' fails with EINVAL naming step and the line.
int split_wire(const std::string& text, const char* step, std::vector<WireField>* out, Error* e);

// spec_without_files returns the wire text minus its `file=` lines: what may be stored on disk
// (exec needs the identity, never the projected content, which must not reach the node's disk).
std::string spec_without_files(const std::string& text);

// parse_spec parses the wire format into out; a malformed line fails with EINVAL and the key.
int parse_spec(const std::string& text, Spec* out, Error* e);

}  // namespace berth
