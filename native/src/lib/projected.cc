#include "projected.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "mounts.h"
#include "spec.h"
#include "unique_fd.h"

namespace berth {

namespace {

constexpr unsigned long long PAGE_BYTES = 4096;
// STAGING_SLACK_BYTES covers the staging root directory and rounding; files are counted exactly.
constexpr unsigned long long STAGING_SLACK_BYTES = 64 * 1024;

std::string octal(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%o", mode);
  return buf;
}

// attach_tree moves the detached mount tree onto target, opened inside root_fd's tree (created
// as a directory or an empty file when missing), so nothing the image planted can redirect it.
int attach_tree(int root_fd, int tree, const std::string& target, bool dir, const char* step,
                Error* e) {
  int fd = open_in_root(root_fd, target, true, dir, e);
  if (fd < 0) return fd;
  unique_fd dest(fd);
  if (::move_mount(tree, "", dest.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return fail(e, errno, step, target);
  return 0;
}

int set_readonly(int mnt, const std::string& what, Error* e) {
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(mnt, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return fail(e, errno, "mount_setattr read-only", what);
  return 0;
}

// new_tmpfs makes a detached tmpfs (nosuid, nodev) with the given size and root mode.
int new_tmpfs(unsigned long long size_bytes, uint32_t mode, const std::string& what, unique_fd* out,
              Error* e) {
  unique_fd fs(::fsopen("tmpfs", FSOPEN_CLOEXEC));
  if (!fs.valid()) return fail(e, errno, "fsopen tmpfs", what);
  std::string size = std::to_string(size_bytes), m = octal(mode);
  if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, "size", size.c_str(), 0) < 0 ||
      ::fsconfig(fs.get(), FSCONFIG_SET_STRING, "mode", m.c_str(), 0) < 0 ||
      ::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
    return fail(e, errno, "configure tmpfs", what);
  out->reset(::fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!out->valid()) return fail(e, errno, "fsmount tmpfs", what);
  return 0;
}

int write_all(int fd, const std::string& data, const std::string& what, Error* e) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(e, errno, "write projected file", what);
    off += static_cast<size_t>(n);
  }
  return 0;
}

// stage_and_bind writes the files into the mounted staging tmpfs (staging is its root) and binds
// each read-only onto its target.
int stage_and_bind(const Spec& spec, int root_fd, int staging, Error* e) {
  for (size_t i = 0; i < spec.files.size(); i++) {
    const ProjectedFile& f = spec.files[i];
    std::string name = std::to_string(i);
    unique_fd fd(::openat(staging, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
    if (!fd.valid()) return fail(e, errno, "create projected file", f.target);
    if (int rc = write_all(fd.get(), f.content, f.target, e); rc < 0) return rc;
    // chown first: it clears set-id bits, which the mode may ask for.
    if (::fchown(fd.get(), f.uid, f.gid) < 0) return fail(e, errno, "chown projected file", f.target);
    if (::fchmod(fd.get(), f.mode) < 0) return fail(e, errno, "chmod projected file", f.target);
    fd.reset();
    unique_fd tree(::open_tree(staging, name.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree.valid()) return fail(e, errno, "open_tree", f.target);
    if (int rc = set_readonly(tree.get(), f.target, e); rc < 0) return rc;
    if (int rc = attach_tree(root_fd, tree.get(), f.target, false, "bind projected file", e); rc < 0)
      return rc;
  }
  return 0;
}

// project_files mounts the staging tmpfs, places the files and detaches the staging mount again,
// whatever happened: the container must not keep a second, writable view of them.
int project_files(const Spec& spec, int root_fd, Error* e) {
  if (::mkdir(FILES_STAGING_DIR, 0700) < 0) return fail(e, errno, "mkdir", FILES_STAGING_DIR);
  std::string opts = "mode=0700,size=" + std::to_string(files_staging_bytes(spec));
  if (::mount("tmpfs", FILES_STAGING_DIR, "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) < 0)
    return fail(e, errno, "mount staging tmpfs", FILES_STAGING_DIR);
  int rc = 0;
  {
    unique_fd staging(::open(FILES_STAGING_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC));
    rc = staging.valid() ? stage_and_bind(spec, root_fd, staging.get(), e)
                         : fail(e, errno, "open", FILES_STAGING_DIR);
  }
  if (::umount2(FILES_STAGING_DIR, MNT_DETACH) < 0 && rc == 0)
    rc = fail(e, errno, "umount staging tmpfs", FILES_STAGING_DIR);
  if (::rmdir(FILES_STAGING_DIR) < 0 && rc == 0) rc = fail(e, errno, "rmdir", FILES_STAGING_DIR);
  return rc;
}

// Layers is the image layers, topmost first, in which the path walked so far is a directory.
using Layers = std::vector<std::string>;

// find_in_layers looks rel up through layers as overlayfs would: the topmost entry wins, a
// whiteout hides it; out gets the layers (from the one found downwards) in which it is a
// directory, so the next component is looked up below real directories only (never through a
// symlink of a layer). Returns false when the merged view has nothing at rel.
bool find_in_layers(const Layers& layers, const std::string& rel, struct stat* st, Layers* out) {
  out->clear();
  bool found = false;
  for (const std::string& layer : layers) {
    struct stat s {};
    if (::lstat((layer + "/" + rel).c_str(), &s) < 0) continue;
    if (S_ISCHR(s.st_mode) && s.st_rdev == 0) break;  // a whiteout: nothing below shows
    if (!found) *st = s;
    found = true;
    if (!S_ISDIR(s.st_mode)) break;
    out->push_back(layer);
  }
  return found;
}

// make_upper_path creates the missing mount point target (a directory when dir) in upper, with
// copies of the image directories above it, each owned by the id the container sees.
int make_upper_path(const Spec& spec, const std::string& upper, const std::string& target, bool dir,
                    Error* e) {
  auto shift = [&](uint32_t id, uint32_t base) { return id < spec.id_map_size ? base + id : id; };
  Layers layers = spec.lower_dirs, next;
  std::vector<std::pair<std::string, struct stat>> existing;  // image dirs on the way
  std::string rel;
  size_t pos = target.find_first_not_of('/');
  while (pos != std::string::npos && pos < target.size()) {
    size_t slash = target.find('/', pos);
    std::string comp = target.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    pos = slash == std::string::npos ? slash : target.find_first_not_of('/', slash);
    bool last = pos == std::string::npos;
    if (comp == "." || comp == "..") return 0;  // not a plain path: left to the init
    rel += (rel.empty() ? "" : "/") + comp;
    struct stat st {};
    if (find_in_layers(layers, rel, &st, &next)) {
      if (last) return 0;                     // the image has it: nothing to make
      if (!S_ISDIR(st.st_mode)) return 0;     // a symlink or file on the way: left to the init
      existing.emplace_back(rel, st);
      layers.swap(next);
      continue;
    }
    for (const auto& [path, lower] : existing) {
      std::string p = upper + "/" + path;
      if (::mkdir(p.c_str(), 0700) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", p);
      if (::fchownat(AT_FDCWD, p.c_str(), shift(lower.st_uid, spec.uid_map_base),
                     shift(lower.st_gid, spec.gid_map_base), AT_SYMLINK_NOFOLLOW) < 0 ||
          ::chmod(p.c_str(), lower.st_mode & 07777) < 0)
        return fail(e, errno, "copy image dir attributes", p);
    }
    existing.clear();
    std::string p = upper + "/" + rel;
    bool make_dir = !last || dir;
    int rc = make_dir ? ::mkdir(p.c_str(), 0755)
                      : ::open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (rc < 0 && errno != EEXIST) return fail(e, errno, "create mount point", p);
    if (!make_dir && rc >= 0) ::close(rc);
    if (::fchownat(AT_FDCWD, p.c_str(), spec.uid_map_base, spec.gid_map_base, AT_SYMLINK_NOFOLLOW) < 0 ||
        (make_dir && ::chmod(p.c_str(), 0755) < 0))
      return fail(e, errno, "chown mount point", p);
    layers.clear();  // below a new directory the image has nothing
  }
  return 0;
}

// under_own_mount is true for targets on the mounts the init makes itself (/dev, /proc, /sys).
bool under_own_mount(const std::string& target) {
  for (const char* top : {"/dev", "/proc", "/sys"}) {
    size_t n = std::strlen(top);
    if (target.compare(0, n, top) == 0 && (target.size() == n || target[n] == '/')) return true;
  }
  return false;
}

}  // namespace

int prepare_userns_mount_points(const Spec& spec, const std::string& dir, Error* e) {
  if (!spec.user_namespace || !spec.rootfs_dir.empty()) return 0;
  std::vector<std::pair<std::string, bool>> targets = {
      {"/etc/hostname", false}, {"/etc/hosts", false}, {"/etc/resolv.conf", false}};
  for (const BindMount& m : spec.mounts) {
    struct stat st {};
    targets.emplace_back(m.target, ::stat(m.source.c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  }
  for (const TmpfsMount& t : spec.tmpfs) targets.emplace_back(t.target, true);
  for (const ProjectedFile& f : spec.files) targets.emplace_back(f.target, false);
  for (const auto& [target, is_dir] : targets) {
    if (under_own_mount(target)) continue;
    if (int rc = make_upper_path(spec, dir + "/upper", target, is_dir, e); rc < 0) return rc;
  }
  return 0;
}

unsigned long long files_staging_bytes(const Spec& spec) {
  unsigned long long total = STAGING_SLACK_BYTES;
  for (const ProjectedFile& f : spec.files)
    total += (f.content.size() + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES + PAGE_BYTES;
  return total;
}

int place_tmpfs_and_files(const Spec& spec, Error* e) {
  if (spec.tmpfs.empty() && spec.files.empty()) return 0;
  unique_fd root(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return fail(e, errno, "open rootfs", ".");
  std::vector<std::pair<unique_fd, std::string>> readonly;
  for (const TmpfsMount& t : spec.tmpfs) {
    unique_fd mnt;
    if (int rc = new_tmpfs(t.size_bytes, t.mode, t.target, &mnt, e); rc < 0) return rc;
    if (int rc = attach_tree(root.get(), mnt.get(), t.target, true, "mount tmpfs", e); rc < 0)
      return rc;
    if (t.readonly) readonly.emplace_back(std::move(mnt), t.target);
  }
  if (!spec.files.empty()) {
    if (int rc = project_files(spec, root.get(), e); rc < 0) return rc;
  }
  for (const auto& [mnt, target] : readonly) {
    if (int rc = set_readonly(mnt.get(), target, e); rc < 0) return rc;
  }
  return 0;
}

}  // namespace berth
