// oci_config.h: an OCI runtime-spec config.json (a bundle) → berth::Spec, plus what Spec does not
// carry (annotations, terminal) and notes on fields parsed but not applied by the core yet.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "error.h"
#include "spec.h"

namespace berth {

// OciConfig is one bundle's config.json as berth-runtime uses it.
struct OciConfig {
  Spec spec;
  std::string oci_version;
  std::string bundle;
  bool terminal = false;
  std::map<std::string, std::string> annotations;
  std::string cgroup_leaf;  // last element of linux.cgroupsPath (spec.cgroup_parent holds the rest)
  // notes list fields that were understood but are not enforced by the core yet ("field: why").
  std::vector<std::string> notes;
};

// OCI_CONFIG_STEP is Error::step for every config error; Error::path names the field and reason.
constexpr const char* OCI_CONFIG_STEP = "config.json";

// parse_oci_config converts config.json text for container id in bundle (an absolute dir).
// A bad or unsupported field fails with EINVAL and Error::path "<field>: <reason>".
int parse_oci_config(const std::string& text, const std::string& bundle, const std::string& id,
                     OciConfig* out, Error* e);

// load_oci_config reads <bundle>/config.json and parses it.
int load_oci_config(const std::string& bundle, const std::string& id, OciConfig* out, Error* e);

// split_cgroups_path turns linux.cgroupsPath ("/a/b/c" or "a/b/c") into parent "a/b" and leaf
// "c"; an empty path gives parent "" and leaf id (runc's default: <root>/<controller>/<id>).
int split_cgroups_path(const std::string& path, const std::string& id, std::string* parent,
                       std::string* leaf, Error* e);

// default_oci_config returns the config.json `berth-runtime spec` writes (like `runc spec`).
std::string default_oci_config();

}  // namespace berth
