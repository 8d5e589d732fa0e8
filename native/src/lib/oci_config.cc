// oci_config.cc: config.json → Spec. nlohmann/json (Debian's header-only nlohmann-json3-dev) does
// the JSON; this file only walks the fields the runtime-spec defines, naming the field in every
// error. Exceptions from the JSON library stay inside this file.
#include "oci_config.h"

#include <errno.h>
#include <sched.h>

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fsutil.h"
#include "security.h"

namespace berth {

namespace {

using json = nlohmann::json;

// ConfigError carries a field and reason out of the walk; converted to Error at the boundary.
struct ConfigError {
  std::string what;
};

[[noreturn]] void bad(const std::string& field, const std::string& reason) {
  throw ConfigError{field + ": " + reason};
}

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

const json& object_at(const json& obj, const char* key, const std::string& field) {
  const json* v = member(obj, key);
  if (v == nullptr || !v->is_object()) bad(field, "must be an object");
  return *v;
}

std::string string_of(const json& v, const std::string& field) {
  if (!v.is_string()) bad(field, "must be a string");
  return v.get<std::string>();
}

std::vector<std::string> strings_of(const json& v, const std::string& field) {
  if (!v.is_array()) bad(field, "must be an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); i++)
    out.push_back(string_of(v[i], field + "[" + std::to_string(i) + "]"));
  return out;
}

int64_t int_of(const json& v, const std::string& field) {
  if (!v.is_number_integer()) bad(field, "must be an integer");
  return v.get<int64_t>();
}

uint32_t id_of(const json& v, const std::string& field) {
  int64_t n = int_of(v, field);
  if (n < 0 || n > UINT32_MAX) bad(field, "must be between 0 and 4294967295");
  return static_cast<uint32_t>(n);
}

// parse_capabilities maps the bounding set onto berth's add/drop against Docker's defaults: add
// the listed ones, drop the defaults not listed. Root keeps the bounding set permitted and
// effective, other users get none (berth's rule), whatever the other OCI sets say.
void parse_capabilities(const json& caps, OciConfig* out) {
  if (!caps.is_object()) bad("process.capabilities", "must be an object");
  std::vector<std::string> bounding;
  for (const char* set : {"bounding", "effective", "inheritable", "permitted", "ambient"}) {
    std::string field = std::string("process.capabilities.") + set;
    const json* v = member(caps, set);
    if (v == nullptr) continue;
    for (const std::string& c : strings_of(*v, field)) {
      if (cap_from_name(c) < 0) bad(field, "unknown capability " + c);
      if (set[0] == 'b') bounding.push_back(c);
    }
    if (set[0] == 'i' || (set[0] == 'a' && !v->empty()))
      out->notes.push_back(field + ": berth never grants inheritable or ambient capabilities");
  }
  uint64_t listed = 0;
  for (const std::string& c : bounding) listed |= 1ull << cap_from_name(c);
  out->spec.cap_add = bounding;
  out->spec.cap_drop.clear();
  for (int n = 0; n < 64; n++) {
    if ((DEFAULT_CAPS & (1ull << n)) && !(listed & (1ull << n))) out->spec.cap_drop.push_back(cap_name(n));
  }
}

void parse_process(const json& p, OciConfig* out) {
  Spec& s = out->spec;
  if (const json* t = member(p, "terminal")) {
    if (!t->is_boolean()) bad("process.terminal", "must be a boolean");
    if (t->get<bool>()) bad("process.terminal", "terminals are not supported yet (set it to false)");
  }
  const json* args = member(p, "args");
  if (args == nullptr) bad("process.args", "is required");
  s.args = strings_of(*args, "process.args");
  if (s.args.empty() || s.args[0].empty()) bad("process.args", "must name a program");
  if (const json* env = member(p, "env")) s.env = strings_of(*env, "process.env");
  const json* cwd = member(p, "cwd");
  if (cwd == nullptr) bad("process.cwd", "is required");
  s.cwd = string_of(*cwd, "process.cwd");
  if (s.cwd.empty() || s.cwd[0] != '/') bad("process.cwd", "must be an absolute path");
  if (const json* user = member(p, "user")) {
    if (!user->is_object()) bad("process.user", "must be an object");
    if (const json* v = member(*user, "uid")) s.uid = id_of(*v, "process.user.uid");
    if (const json* v = member(*user, "gid")) s.gid = id_of(*v, "process.user.gid");
    if (const json* v = member(*user, "additionalGids")) {
      if (!v->is_array()) bad("process.user.additionalGids", "must be an array of integers");
      for (size_t i = 0; i < v->size(); i++)
        s.groups.push_back(id_of((*v)[i], "process.user.additionalGids[" + std::to_string(i) + "]"));
    }
    if (member(*user, "username") != nullptr) bad("process.user.username", "is Windows-only");
  }
  if (const json* caps = member(p, "capabilities")) parse_capabilities(*caps, out);
  if (const json* nnp = member(p, "noNewPrivileges")) {
    if (!nnp->is_boolean()) bad("process.noNewPrivileges", "must be a boolean");
    if (!nnp->get<bool>()) out->notes.push_back("process.noNewPrivileges: berth always sets it");
  }
  if (const json* rl = member(p, "rlimits")) {
    if (!rl->is_array()) bad("process.rlimits", "must be an array");
    for (size_t i = 0; i < rl->size(); i++) {
      std::string field = "process.rlimits[" + std::to_string(i) + "]";
      const json& r = (*rl)[i];
      if (!r.is_object()) bad(field, "must be an object");
      const json* type = member(r, "type");
      if (type == nullptr) bad(field + ".type", "is required");
      std::string name = string_of(*type, field + ".type");
      berth::Rlimit limit;
      limit.resource = rlimit_from_name(name);
      if (limit.resource < 0) bad(field + ".type", "unknown resource " + name);
      for (const char* k : {"hard", "soft"}) {
        const json* v = member(r, k);
        if (v == nullptr || !v->is_number_unsigned()) bad(field + "." + k, "must be a non-negative integer");
        (k[0] == 'h' ? limit.hard : limit.soft) = v->get<uint64_t>();
      }
      if (limit.soft > limit.hard) bad(field + ".soft", "must not exceed hard");
      s.rlimits.push_back(limit);
    }
  }
  for (const char* unsupported : {"apparmorProfile", "selinuxLabel", "oomScoreAdj", "ioPriority",
                                  "scheduler", "consoleSize"}) {
    if (member(p, unsupported) != nullptr)
      out->notes.push_back(std::string("process.") + unsupported + ": ignored");
  }
}

struct NamespaceName {
  const char* name;
  uint32_t flag;
};
constexpr NamespaceName NAMESPACES[] = {
    {"pid", CLONE_NEWPID}, {"mount", CLONE_NEWNS},      {"uts", CLONE_NEWUTS},
    {"ipc", CLONE_NEWIPC}, {"network", CLONE_NEWNET}, {"cgroup", CLONE_NEWCGROUP},
    {"user", CLONE_NEWUSER}, {"time", 0}};

void parse_namespaces(const json& v, Spec* s) {
  if (!v.is_array()) bad("linux.namespaces", "must be an array");
  uint32_t flags = 0;
  for (size_t i = 0; i < v.size(); i++) {
    std::string field = "linux.namespaces[" + std::to_string(i) + "]";
    if (!v[i].is_object()) bad(field, "must be an object");
    const json* type = member(v[i], "type");
    if (type == nullptr) bad(field + ".type", "is required");
    std::string name = string_of(*type, field + ".type");
    const NamespaceName* found = nullptr;
    for (const NamespaceName& n : NAMESPACES) {
      if (name == n.name) found = &n;
    }
    if (found == nullptr) bad(field + ".type", "unknown namespace \"" + name + "\"");
    if (found->flag == 0) bad(field + ".type", "\"" + name + "\" namespaces are not supported yet");
    if (member(v[i], "path") != nullptr)
      bad(field + ".path", "joining an existing namespace is not supported");
    if (flags & found->flag) bad(field + ".type", "\"" + name + "\" is listed twice");
    flags |= found->flag;
  }
  if (!(flags & CLONE_NEWNS)) bad("linux.namespaces", "a mount namespace is required");
  // The core creates the user namespace itself from user_namespace and the id maps.
  s->user_namespace = (flags & CLONE_NEWUSER) != 0;
  s->namespaces = flags & ~static_cast<uint32_t>(CLONE_NEWUSER);
}

void parse_resources(const json& r, OciConfig* out) {
  Spec& s = out->spec;
  if (!r.is_object()) bad("linux.resources", "must be an object");
  if (const json* mem = member(r, "memory")) {
    if (const json* v = member(*mem, "limit")) {
      int64_t n = int_of(*v, "linux.resources.memory.limit");
      if (n < -1 || n == 0) bad("linux.resources.memory.limit", "must be positive, or -1 for no limit");
      s.memory_bytes = n > 0 ? static_cast<uint64_t>(n) : 0;
    }
    if (const json* v = member(*mem, "swap")) {
      int64_t n = int_of(*v, "linux.resources.memory.swap");
      // OCI swap is memory+swap (v1 memsw); Spec holds the swap on top of memory.
      if (n > 0 && s.memory_bytes > 0 && static_cast<uint64_t>(n) >= s.memory_bytes)
        s.swap_bytes = static_cast<uint64_t>(n) - s.memory_bytes;
      else if (n > 0) bad("linux.resources.memory.swap", "must be at least memory.limit");
    }
  }
  if (const json* cpu = member(r, "cpu")) {
    int64_t period = 100000;
    if (const json* v = member(*cpu, "period")) period = int_of(*v, "linux.resources.cpu.period");
    if (period <= 0) bad("linux.resources.cpu.period", "must be positive");
    if (const json* v = member(*cpu, "quota")) {
      int64_t quota = int_of(*v, "linux.resources.cpu.quota");
      if (quota < -1 || quota == 0) bad("linux.resources.cpu.quota", "must be positive, or -1 for no limit");
      if (quota > 0) s.cpu_millis = static_cast<uint64_t>(std::ceil(quota * 1000.0 / period));
    }
    if (const json* v = member(*cpu, "shares")) {
      int_of(*v, "linux.resources.cpu.shares");
      out->notes.push_back("linux.resources.cpu.shares: derived from the quota, not applied as given");
    }
    if (const json* v = member(*cpu, "cpus")) s.cpus = string_of(*v, "linux.resources.cpu.cpus");
  }
  if (const json* pids = member(r, "pids")) {
    if (const json* v = member(*pids, "limit")) {
      int64_t n = int_of(*v, "linux.resources.pids.limit");
      s.pids = n > 0 ? static_cast<uint64_t>(n) : 0;
    }
  }
  if (member(r, "devices") != nullptr)
    out->notes.push_back("linux.resources.devices: berth's default device rules apply");
}

// KNOWN_MOUNTS are the mounts the core always provides itself, as `runc spec` lists them.
constexpr const char* KNOWN_MOUNTS[][2] = {
    {"/proc", "proc"},       {"/dev", "tmpfs"},     {"/dev/pts", "devpts"}, {"/dev/shm", "tmpfs"},
    {"/dev/mqueue", "mqueue"}, {"/sys", "sysfs"}, {"/sys/fs/cgroup", "cgroup"}};

void parse_mounts(const json& v, OciConfig* out) {
  if (!v.is_array()) bad("mounts", "must be an array");
  for (size_t i = 0; i < v.size(); i++) {
    std::string field = "mounts[" + std::to_string(i) + "]";
    if (!v[i].is_object()) bad(field, "must be an object");
    const json* dest = member(v[i], "destination");
    if (dest == nullptr) bad(field + ".destination", "is required");
    std::string d = string_of(*dest, field + ".destination");
    if (d.empty() || d[0] != '/') bad(field + ".destination", "must be an absolute path");
    std::string type;
    if (const json* t = member(v[i], "type")) type = string_of(*t, field + ".type");
    std::vector<std::string> opts;
    if (const json* o = member(v[i], "options")) opts = strings_of(*o, field + ".options");
    bool bind = type == "bind";
    bool ro = false;
    for (const std::string& o : opts) {
      bind = bind || o == "bind" || o == "rbind";
      ro = ro || o == "ro";
    }
    if (bind) {
      const json* src = member(v[i], "source");
      if (src == nullptr) bad(field + ".source", "is required for a bind mount");
      std::string source = string_of(*src, field + ".source");
      if (source.empty()) bad(field + ".source", "must not be empty");
      BindMount m;
      m.source = source[0] == '/' ? source : out->bundle + "/" + source;
      m.target = d;
      m.readonly = ro;
      out->spec.mounts.push_back(m);
      continue;
    }
    bool known = false;
    for (const auto& m : KNOWN_MOUNTS) known = known || (d == m[0] && type == m[1]);
    if (known) {
      if (d == "/dev/mqueue" || d == "/sys/fs/cgroup")
        out->notes.push_back(field + ": " + d + " is not mounted yet");
      continue;
    }
    bad(field, "only bind mounts and the standard ones (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, "
               "/sys, /sys/fs/cgroup) are supported, not " + type + " on " + d);
  }
}

// parse_id_mappings accepts what berth's user namespaces do: one range starting at container id
// 0, the same size for uids and gids.
void parse_id_mappings(const json& l, Spec* s) {
  uint32_t host[2] = {0, 0};
  uint32_t size[2] = {0, 0};
  const char* keys[2] = {"uidMappings", "gidMappings"};
  for (int k = 0; k < 2; k++) {
    std::string field = std::string("linux.") + keys[k];
    const json* v = member(l, keys[k]);
    if (v == nullptr || (v->is_array() && v->empty())) {
      if (s->user_namespace) bad(field, "is required with a user namespace");
      continue;
    }
    if (!s->user_namespace) bad(field, "needs a user namespace in linux.namespaces");
    if (!v->is_array() || v->size() != 1) bad(field, "must hold exactly one range (berth's limit)");
    const json& m = (*v)[0];
    if (!m.is_object()) bad(field + "[0]", "must be an object");
    for (const char* f : {"containerID", "hostID", "size"})
      if (member(m, f) == nullptr) bad(field + "[0]." + f, "is required");
    if (id_of(m["containerID"], field + "[0].containerID") != 0) bad(field + "[0].containerID", "must be 0");
    host[k] = id_of(m["hostID"], field + "[0].hostID");
    size[k] = id_of(m["size"], field + "[0].size");
    if (size[k] == 0) bad(field + "[0].size", "must be positive");
  }
  if (!s->user_namespace) return;
  if (size[0] != size[1]) bad("linux.gidMappings[0].size", "must equal the uid range's size");
  s->uid_map_base = host[0];
  s->gid_map_base = host[1];
  s->id_map_size = size[0];
}

void parse_linux(const json& l, OciConfig* out) {
  Spec& s = out->spec;
  if (!l.is_object()) bad("linux", "must be an object");
  if (const json* ns = member(l, "namespaces")) parse_namespaces(*ns, &s);
  else bad("linux.namespaces", "is required");
  if (const json* r = member(l, "resources")) parse_resources(*r, out);
  if (const json* cp = member(l, "cgroupsPath")) {
    Error e;
    std::string path = string_of(*cp, "linux.cgroupsPath");
    if (split_cgroups_path(path, s.id, &s.cgroup_parent, &out->cgroup_leaf, &e) < 0)
      bad("linux.cgroupsPath", e.path);
  }
  for (const char* list : {"maskedPaths", "readonlyPaths"}) {
    if (const json* v = member(l, list)) {
      for (const std::string& p : strings_of(*v, std::string("linux.") + list))
        if (p.empty() || p[0] != '/') bad(std::string("linux.") + list, "paths must be absolute");
      if (!v->empty()) out->notes.push_back(std::string("linux.") + list + ": berth's standard list applies");
    }
  }
  // runc applies no filter without the field; with one, berth's default filter stands in for a
  // deny-by-default profile (Docker's shape), and anything else is refused rather than guessed.
  s.seccomp = false;
  if (const json* sc = member(l, "seccomp")) {
    const json* action = sc->is_object() ? member(*sc, "defaultAction") : nullptr;
    std::string a = action == nullptr ? "" : string_of(*action, "linux.seccomp.defaultAction");
    if (a != "SCMP_ACT_ERRNO" && a != "SCMP_ACT_KILL" && a != "SCMP_ACT_KILL_PROCESS")
      bad("linux.seccomp", "only a deny-by-default profile is supported (berth's default filter replaces it)");
    s.seccomp = true;
    out->notes.push_back("linux.seccomp: berth's default filter applied in place of the given syscall list");
  }
  parse_id_mappings(l, &s);
  for (const char* k : {"sysctl", "devices", "rootfsPropagation", "mountLabel", "intelRdt",
                        "personality"}) {
    if (member(l, k) != nullptr) out->notes.push_back(std::string("linux.") + k + ": ignored");
  }
}

void parse_all(const json& c, const std::string& bundle, OciConfig* out) {
  if (!c.is_object()) bad("config", "must be a JSON object");
  Spec& s = out->spec;
  const json* ver = member(c, "ociVersion");
  if (ver == nullptr) bad("ociVersion", "is required");
  out->oci_version = string_of(*ver, "ociVersion");
  if (out->oci_version.compare(0, 2, "1.") != 0) bad("ociVersion", "must be 1.x, not " + out->oci_version);
  const json& root = object_at(c, "root", "root");
  const json* rp = member(root, "path");
  if (rp == nullptr) bad("root.path", "is required");
  std::string path = string_of(*rp, "root.path");
  if (path.empty()) bad("root.path", "must not be empty");
  s.rootfs_dir = path[0] == '/' ? path : bundle + "/" + path;
  out->bundle = bundle;
  if (const json* ro = member(root, "readonly")) {
    if (!ro->is_boolean()) bad("root.readonly", "must be a boolean");
    s.read_only_rootfs = ro->get<bool>();
  }
  if (const json* h = member(c, "hostname")) s.hostname = string_of(*h, "hostname");
  parse_process(object_at(c, "process", "process"), out);
  parse_linux(object_at(c, "linux", "linux"), out);
  if (!s.hostname.empty() && !(s.namespaces & CLONE_NEWUTS))
    bad("hostname", "needs a uts namespace in linux.namespaces");
  if (const json* m = member(c, "mounts")) parse_mounts(*m, out);
  if (const json* a = member(c, "annotations")) {
    if (!a->is_object()) bad("annotations", "must be an object of strings");
    for (auto it = a->begin(); it != a->end(); ++it)
      out->annotations[it.key()] = string_of(it.value(), "annotations." + it.key());
  }
  if (member(c, "hooks") != nullptr) bad("hooks", "hooks are not supported yet");
}

}  // namespace

int split_cgroups_path(const std::string& path, const std::string& id, std::string* parent,
                       std::string* leaf, Error* e) {
  std::string p = path;
  if (p.find(':') != std::string::npos)
    return fail(e, EINVAL, OCI_CONFIG_STEP, "systemd cgroup paths (slice:prefix:name) are not supported");
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) {
    *parent = "";
    *leaf = id;
    return 0;
  }
  for (size_t start = 0; start <= p.size();) {
    size_t slash = p.find('/', start);
    if (slash == std::string::npos) slash = p.size();
    std::string part = p.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..")
      return fail(e, EINVAL, OCI_CONFIG_STEP, "\"" + path + "\" has an empty, . or .. element");
    start = slash + 1;
  }
  size_t last = p.find_last_of('/');
  *parent = last == std::string::npos ? "" : p.substr(0, last);
  *leaf = last == std::string::npos ? p : p.substr(last + 1);
  return 0;
}

int parse_oci_config(const std::string& text, const std::string& bundle, const std::string& id,
                     OciConfig* out, Error* e) {
  *out = OciConfig();
  out->spec.id = id;
  out->spec.cgroup_parent = "";
  out->cgroup_leaf = id;
  try {
    parse_all(json::parse(text), bundle, out);
  } catch (const ConfigError& err) {
    return fail(e, EINVAL, OCI_CONFIG_STEP, err.what);
  } catch (const json::exception& err) {
    return fail(e, EINVAL, OCI_CONFIG_STEP, std::string("invalid JSON: ") + err.what());
  }
  return 0;
}

int load_oci_config(const std::string& bundle, const std::string& id, OciConfig* out, Error* e) {
  std::string text;
  if (int rc = read_file(bundle + "/config.json", &text, e); rc < 0) return rc;
  return parse_oci_config(text, bundle, id, out, e);
}

std::string default_oci_config() {
  json mounts = json::array();
  auto mount = [&](const char* dest, const char* type, const char* src, std::vector<std::string> opts) {
    json m = {{"destination", dest}, {"type", type}, {"source", src}};
    if (!opts.empty()) m["options"] = opts;
    mounts.push_back(m);
  };
  mount("/proc", "proc", "proc", {});
  mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  mount("/dev/pts", "devpts", "devpts",
        {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
  mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  json namespaces = json::array();
  for (const char* n : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) namespaces.push_back({{"type", n}});
  json c = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"sh"}},
        {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "berth"},
      {"mounts", mounts},
      {"linux", {{"resources", json::object()}, {"namespaces", namespaces}}},
  };
  return c.dump(1, '\t') + "\n";
}

}  // namespace berth
