#include "spec.h"

#include <errno.h>

#include <cstdlib>
#include <utility>

namespace berth {

namespace {

std::string unescape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      char c = v[++i];
      out.push_back(c == 'n' ? '\n' : c);
    } else {
      out.push_back(v[i]);
    }
  }
  return out;
}

bool parse_u64(const std::string& v, uint64_t* out) {
  if (v.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v[0] == '-') return false;
  *out = n;
  return true;
}

// valid_cpu_list accepts a cpuset list ("0-1,3"): digits, '-' and ',' only, so the value can
// never smuggle anything else into a cgroup file.
bool valid_cpu_list(const std::string& v) {
  if (v.empty()) return false;
  for (char c : v) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == ',')) return false;
  }
  return true;
}

bool parse_bool(const std::string& v, bool* out) {
  if (v != "0" && v != "1") return false;
  *out = v == "1";
  return true;
}

bool parse_u32(const std::string& v, uint32_t* out) {
  uint64_t n = 0;
  if (!parse_u64(v, &n) || n > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(n);
  return true;
}

bool valid_cap(const std::string& v) { return v == "ALL" || v == "all" || cap_from_name(v) >= 0; }

// parse_limit_value reads an rlimit value: a number or "unlimited".
bool parse_limit_value(const std::string& v, uint64_t* out) {
  if (v == "unlimited") {
    *out = ~uint64_t{0};
    return true;
  }
  return parse_u64(v, out);
}

// parse_rlimit reads `NAME:soft:hard`.
bool parse_rlimit(const std::string& v, std::vector<Rlimit>* out) {
  size_t c1 = v.find(':');
  size_t c2 = c1 == std::string::npos ? c1 : v.find(':', c1 + 1);
  if (c2 == std::string::npos) return false;
  Rlimit r;
  r.resource = rlimit_from_name(v.substr(0, c1));
  if (r.resource < 0 || !parse_limit_value(v.substr(c1 + 1, c2 - c1 - 1), &r.soft) ||
      !parse_limit_value(v.substr(c2 + 1), &r.hard) || r.soft > r.hard)
    return false;
  out->push_back(r);
  return true;
}

// parse_mount reads `SOURCE\tTARGET\tro|rw`; both paths absolute.
bool parse_mount(const std::string& v, std::vector<BindMount>* out) {
  size_t t1 = v.find('\t');
  size_t t2 = t1 == std::string::npos ? t1 : v.find('\t', t1 + 1);
  if (t2 == std::string::npos) return false;
  BindMount m{v.substr(0, t1), v.substr(t1 + 1, t2 - t1 - 1), v.substr(t2 + 1) == "ro"};
  if (m.source.empty() || m.source[0] != '/' || m.target.empty() || m.target[0] != '/') return false;
  if (v.substr(t2 + 1) != "ro" && v.substr(t2 + 1) != "rw") return false;
  out->push_back(m);
  return true;
}

// split_tabs splits v at each tab.
std::vector<std::string> split_tabs(const std::string& v) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t tab = v.find('\t', pos);
    out.push_back(v.substr(pos, tab == std::string::npos ? std::string::npos : tab - pos));
    if (tab == std::string::npos) return out;
    pos = tab + 1;
  }
}

// parse_mode reads a permission mode in octal (up to 07777).
bool parse_mode(const std::string& v, uint32_t* out) {
  if (v.empty() || v.size() > 5 || v.find_first_not_of("01234567") != std::string::npos) return false;
  unsigned long n = std::strtoul(v.c_str(), nullptr, 8);
  if (n > 07777) return false;
  *out = static_cast<uint32_t>(n);
  return true;
}

// base64_decode reads standard base64 with padding (RFC 4648 section 4); false on anything else.
bool base64_decode(const std::string& v, std::string* out) {
  if (v.size() % 4 != 0) return false;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out->clear();
  out->reserve(v.size() / 4 * 3);
  for (size_t i = 0; i < v.size(); i += 4) {
    bool last = i + 4 == v.size();
    int pad = last ? (v[i + 3] == '=') + (v[i + 2] == '=' && v[i + 3] == '=') : 0;
    int a = value(v[i]), b = value(v[i + 1]);
    int c = pad >= 2 ? 0 : value(v[i + 2]), d = pad >= 1 ? 0 : value(v[i + 3]);
    if (a < 0 || b < 0 || c < 0 || d < 0) return false;
    uint32_t n = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    out->push_back(static_cast<char>(n >> 16));
    if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(n & 0xff));
  }
  return true;
}

// valid_cwd wants an absolute path without ".." components: chdir after pivot_root could not
// leave the root anyway, but such a cwd is a sign of a confused or hostile spec.
bool valid_cwd(const std::string& v) {
  if (v.empty() || v[0] != '/') return false;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t slash = v.find('/', pos);
    if (slash == std::string::npos) slash = v.size();
    if (v.compare(pos, slash - pos, "..") == 0 && slash - pos == 2) return false;
    pos = slash + 1;
  }
  return true;
}

// valid_target is a container path to mount something on: absolute, no "..", not "/" itself.
bool valid_target(const std::string& v) {
  return valid_cwd(v) && v.find_first_not_of('/') != std::string::npos;
}

// parse_tmpfs reads `TARGET\tSIZE_BYTES\tMODE_OCTAL\tro|rw`; the size must be positive.
bool parse_tmpfs(const std::string& v, std::vector<TmpfsMount>* out) {
  std::vector<std::string> f = split_tabs(v);
  if (f.size() != 4 || (f[3] != "ro" && f[3] != "rw")) return false;
  TmpfsMount m;
  m.target = f[0];
  m.readonly = f[3] == "ro";
  if (!valid_target(m.target) || !parse_u64(f[1], &m.size_bytes) || m.size_bytes == 0 ||
      !parse_mode(f[2], &m.mode))
    return false;
  out->push_back(m);
  return true;
}

// parse_file reads `TARGET\tMODE_OCTAL\tUID\tGID\tBASE64`.
bool parse_file(const std::string& v, std::vector<ProjectedFile>* out) {
  std::vector<std::string> f = split_tabs(v);
  if (f.size() != 5) return false;
  ProjectedFile p;
  p.target = f[0];
  if (!valid_target(p.target) || !parse_mode(f[1], &p.mode) || !parse_u32(f[2], &p.uid) ||
      !parse_u32(f[3], &p.gid) || !base64_decode(f[4], &p.content))
    return false;
  out->push_back(std::move(p));
  return true;
}

}  // namespace

std::string spec_without_files(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    if (text.compare(pos, 5, "file=") != 0) out.append(text, pos, end - pos);
    pos = end;
  }
  return out;
}

int split_wire(const std::string& text, const char* step, std::vector<WireField>* out, Error* e) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return fail(e, EINVAL, step, line);
    out->push_back({line.substr(0, eq), unescape(line.substr(eq + 1))});
  }
  return 0;
}

int parse_spec(const std::string& text, Spec* out, Error* e) {
  std::vector<WireField> fields;
  if (int rc = split_wire(text, "parse spec", &fields, e); rc < 0) return rc;
  for (const WireField& field : fields) {
    const std::string& key = field.key;
    const std::string& value = field.value;
    uint64_t n = 0;
    bool ok = true;
    if (key == "id") out->id = value;
    else if (key == "hostname") out->hostname = value;
    else if (key == "lower") out->lower_dirs.push_back(value);
    else if (key == "arg") out->args.push_back(value);
    else if (key == "env") out->env.push_back(value);
    else if (key == "cwd") out->cwd = value;
    else if (key == "uid") ok = parse_u64(value, &n) && n <= UINT32_MAX && ((out->uid = n), true);
    else if (key == "gid") ok = parse_u64(value, &n) && n <= UINT32_MAX && ((out->gid = n), true);
    else if (key == "memory") ok = parse_u64(value, &out->memory_bytes);
    else if (key == "cpuMillis") ok = parse_u64(value, &out->cpu_millis);
    else if (key == "pids") ok = parse_u64(value, &out->pids);
    else if (key == "swap") ok = parse_u64(value, &out->swap_bytes);
    else if (key == "cpus") ok = valid_cpu_list(value) && ((out->cpus = value), true);
    else if (key == "cgroupParent") out->cgroup_parent = value;
    else if (key == "cgroupRoot") out->cgroup_root = value;
    else if (key == "cgroupVersion") out->cgroup_version = value;
    else if (key == "logMaxBytes") ok = parse_u64(value, &out->log_max_bytes);
    else if (key == "rootfsDir") out->rootfs_dir = value;
    else if (key == "namespaces")
      ok = parse_u64(value, &n) && n <= UINT32_MAX && ((out->namespaces = n), true);
    else if (key == "capAdd") ok = valid_cap(value) && (out->cap_add.push_back(value), true);
    else if (key == "capDrop") ok = valid_cap(value) && (out->cap_drop.push_back(value), true);
    else if (key == "group") ok = parse_u64(value, &n) && n <= UINT32_MAX && (out->groups.push_back(static_cast<uint32_t>(n)), true);
    else if (key == "rlimit") ok = parse_rlimit(value, &out->rlimits);
    else if (key == "readOnlyRootfs") ok = parse_bool(value, &out->read_only_rootfs);
    else if (key == "seccomp") ok = (value == "default" || value == "unconfined") && ((out->seccomp = value == "default"), true);
    else if (key == "userNamespace") ok = parse_bool(value, &out->user_namespace);
    else if (key == "uidMapBase") ok = parse_u32(value, &out->uid_map_base);
    else if (key == "gidMapBase") ok = parse_u32(value, &out->gid_map_base);
    else if (key == "idMapSize") ok = parse_u32(value, &out->id_map_size) && out->id_map_size > 0;
    else if (key == "mount") ok = parse_mount(value, &out->mounts);
    else if (key == "tmpfs") ok = parse_tmpfs(value, &out->tmpfs);
    else if (key == "file") ok = parse_file(value, &out->files);
    else if (key == "hosts") out->hosts = value;
    else if (key == "resolvConf") out->resolv_conf = value;
    else if (key == "init") ok = !value.empty() && value[0] == '/' && ((out->init = value), true);
    else ok = false;
    if (!ok) return fail(e, EINVAL, "parse spec", key);
  }
  if (out->id.empty()) return fail(e, EINVAL, "parse spec", "id");
  if (!valid_cwd(out->cwd)) return fail(e, EINVAL, "parse spec", "cwd");
  if (out->user_namespace && (out->uid >= out->id_map_size || out->gid >= out->id_map_size))
    return fail(e, EINVAL, "parse spec", "userNamespace: uid/gid outside the id map");
  for (const ProjectedFile& f : out->files) {
    if (out->user_namespace && (f.uid >= out->id_map_size || f.gid >= out->id_map_size))
      return fail(e, EINVAL, "parse spec", "file: uid/gid outside the id map");
  }
  if (out->args.empty()) return fail(e, EINVAL, "parse spec", "arg");
  if (out->lower_dirs.empty() && out->rootfs_dir.empty()) return fail(e, EINVAL, "parse spec", "lower");
  if (out->cgroup_version != "" && out->cgroup_version != "v1" && out->cgroup_version != "v2")
    return fail(e, EINVAL, "parse spec", "cgroupVersion");
  return 0;
}

}  // namespace berth
