// projected.h: the spec's tmpfs mounts and projected files (secrets, configs), placed by the
// container's init inside the rootfs before pivot_root.
//
// Projected files must never reach the node's disk. The init mounts one staging tmpfs (mode
// 0700) on a directory of the container's own /dev tmpfs, in its private mount namespace, writes
// each file there (owner and mode set on the open file), binds each one read-only onto its
// target (opened inside the rootfs, as bind_into_root does, so a planted symlink cannot send it
// onto the host), then detaches the staging mount: only the binds remain, and they go with the
// mount namespace when the container ends. The mount points created for them are empty files
// on the overlay's upper dir.
#pragma once

#include <string>

#include "error.h"

namespace berth {

struct Spec;

// FILES_STAGING_DIR is where the staging tmpfs hangs while the files are written and bound;
// relative to the new root (the init's cwd), on the container's /dev tmpfs, removed afterwards.
constexpr const char* FILES_STAGING_DIR = "dev/.berth-files";

// files_staging_bytes is the size limit of the staging tmpfs for the spec's files: each file
// rounded up to whole pages, one page more per file, plus slack.
unsigned long long files_staging_bytes(const Spec& spec);

// prepare_userns_mount_points runs in the shim (host root) before the clone of a container with
// a user namespace: the mapped root cannot create anything in a directory of the image (owned by
// an unmapped host id), so the mount points of the etc files, bind mounts, tmpfs mounts and
// projected files that the image lacks are made here, in the overlay's upper dir (dir/upper),
// with copies of the image directories above them (same mode, owner shifted into the map).
// Targets whose path meets a symlink or a non-directory in the image are left alone: the init
// resolves those inside the root as always. A no-op for a bundle rootfs (no overlay).
int prepare_userns_mount_points(const Spec& spec, const std::string& dir, Error* e);

// place_tmpfs_and_files mounts the spec's tmpfs mounts (nosuid, nodev, size= and mode= from the
// spec), then places its projected files, then makes the read-only tmpfs mounts read-only (last,
// so files may be projected below one). Runs in the init with the new root as its cwd.
int place_tmpfs_and_files(const Spec& spec, Error* e);

}  // namespace berth
