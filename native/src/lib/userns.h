// userns.h: the optional user namespace: container ids 0..size-1 map to an unprivileged host
// range, so container root is nobody special on the host.
//
// The init is cloned with CLONE_NEWUSER and waits; the shim (still host root) writes its
// uid_map/gid_map and lets it continue. Files the init must write as its own root (overlay
// upper and work dirs, the etc files) are chowned to the range first, and the container dir is
// opened to its group (mode 0710) so the mapped root can pass through it. Image layers stay owned
// by host root, which the container sees as the overflow id (nobody): readable, not writable.
#pragma once

#include <sys/types.h>

#include <string>

#include "error.h"

namespace berth {

struct Spec;

// prepare_userns_dirs chowns dir/upper, dir/work and the etc files to the mapped root, and gives
// dir itself to the mapped root's group with mode 0710.
int prepare_userns_dirs(const Spec& spec, const std::string& dir, Error* e);

// write_id_maps maps container 0..id_map_size-1 to the spec's host bases for pid.
int write_id_maps(pid_t pid, const Spec& spec, Error* e);

}  // namespace berth
