// mounts.h: the container's filesystem view, built by the init in its own mount namespace.
//
// Order: propagation made private before anything is mounted; the rootfs (overlay of the image
// layers, or an OCI bundle's directory); /proc, /dev (tmpfs with the standard nodes, pts, shm,
// mqueue), /sys read-only; /etc/hostname, /etc/hosts, /etc/resolv.conf and the spec's bind
// mounts, each target opened inside the rootfs without leaving it; berth-init read-only at
// /dev/init when the spec has one; the spec's tmpfs mounts and projected files (projected.h);
// Docker's masked and read-only paths; pivot_root; finally the
// optional read-only remount of /.
#pragma once

#include <string>

#include "error.h"

namespace berth {

struct Spec;

// MASKED_PATHS are hidden: /dev/null over files, an empty read-only tmpfs over directories.
extern const char* const MASKED_PATHS[];
// READONLY_PATHS are bound onto themselves and remounted read-only.
extern const char* const READONLY_PATHS[];

// write_etc_files writes dir/hostname, dir/hosts and dir/resolv.conf (the spec's content, or
// defaults: localhost plus the hostname; the host's resolv.conf without loopback nameservers),
// which the init binds over the rootfs's /etc files. Runs in the shim, before the clone.
int write_etc_files(const Spec& spec, const std::string& dir, Error* e);

// setup_rootfs builds the filesystem view described above and pivots into it; on return the
// init's root and cwd are the container's /.
int setup_rootfs(const Spec& spec, const std::string& dir, Error* e);

// open_in_root opens path (absolute or relative, read as relative to root_fd) as an O_PATH fd,
// resolving every component, symlinks and ".." included, as if root_fd were "/"
// (openat2 RESOLVE_IN_ROOT; kernels without it get a walk that refuses symlinks). When the path
// does not exist and create is set, the missing directories are made and the last component is
// made as a directory (create_dir) or an empty file. Returns the fd, or -errno with e filled.
int open_in_root(int root_fd, const std::string& path, bool create, bool create_dir, Error* e);

// bind_into_root bind-mounts the host path source onto target inside root_fd's tree: the target
// is opened with open_in_root and the mount is attached to that fd (open_tree + move_mount), so
// a symlink the container planted can never redirect it onto the host. readonly applies to the
// whole bound tree.
int bind_into_root(int root_fd, const std::string& source, const std::string& target,
                   bool readonly, Error* e);

}  // namespace berth
