#include "spec.h"

#include <errno.h>

#include <cstdlib>

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

}  // namespace

int parse_spec(const std::string& text, Spec* out, Error* e) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return fail(e, EINVAL, "parse spec", line);
    std::string key = line.substr(0, eq);
    std::string value = unescape(line.substr(eq + 1));
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
    else if (key == "cgroupParent") out->cgroup_parent = value;
    else if (key == "cgroupRoot") out->cgroup_root = value;
    else if (key == "cgroupVersion") out->cgroup_version = value;
    else if (key == "logMaxBytes") ok = parse_u64(value, &out->log_max_bytes);
    else ok = false;
    if (!ok) return fail(e, EINVAL, "parse spec", key);
  }
  if (out->id.empty()) return fail(e, EINVAL, "parse spec", "id");
  if (out->args.empty()) return fail(e, EINVAL, "parse spec", "arg");
  if (out->lower_dirs.empty()) return fail(e, EINVAL, "parse spec", "lower");
  if (out->cgroup_version != "" && out->cgroup_version != "v1" && out->cgroup_version != "v2")
    return fail(e, EINVAL, "parse spec", "cgroupVersion");
  return 0;
}

}  // namespace berth
