// oci_config_test.cc: config.json → Spec. A `runc spec`-style config converts to the expected
// Spec; bad configs fail with an error naming the field.
#include <errno.h>
#include <sched.h>

#include <string>

#include "../src/lib/oci_config.h"
#include "harness.h"

namespace {

// RUNC_SPEC is `runc spec` output (runc 1.1) with terminal off and limits added.
const char* RUNC_SPEC = R"({
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false, "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
    "args": ["sleep", "100"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm"], "cwd": "/tmp",
    "capabilities": {"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                     "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "runc",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}],
                  "memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000, "shares": 512},
                  "pids": {"limit": 64}},
    "cgroupsPath": "/bench/runc/c1",
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/kcore", "/proc/keys"],
    "readonlyPaths": ["/proc/sys"]
  },
  "annotations": {"org.example": "yes"}
})";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  if (at == std::string::npos) throw berth_test::Failure{"fixture lacks " + from};
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST(oci_runc_spec_converts) {
  berth::OciConfig c;
  berth::Error e;
  int rc = berth::parse_oci_config(RUNC_SPEC, "/b", "c1", &c, &e);
  EXPECT_EQ(e.path, "");
  EXPECT_EQ(rc, 0);
  const berth::Spec& s = c.spec;
  EXPECT_EQ(s.id, "c1");
  EXPECT_EQ(s.rootfs_dir, "/b/rootfs");
  EXPECT_EQ(s.args.size(), 2u);
  EXPECT_EQ(s.args[1], "100");
  EXPECT_EQ(s.env[0], "PATH=/usr/bin:/bin");
  EXPECT_EQ(s.cwd, "/tmp");
  EXPECT_EQ(s.uid, 1000u);
  EXPECT_EQ(s.gid, 1000u);
  EXPECT_EQ(s.hostname, "runc");
  EXPECT_EQ(s.memory_bytes, 67108864u);
  EXPECT_EQ(s.cpu_millis, 500u);
  EXPECT_EQ(s.pids, 64u);
  EXPECT_EQ(s.namespaces, static_cast<uint32_t>(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                                                CLONE_NEWUTS | CLONE_NEWNS));
  EXPECT_EQ(s.cgroup_parent, "bench/runc");
  EXPECT_EQ(c.cgroup_leaf, "c1");
  EXPECT_EQ(c.annotations.at("org.example"), "yes");
  EXPECT_TRUE(!c.notes.empty());  // caps, rlimits, masked paths... are reported, not silent
}

TEST(oci_default_config_round_trips_without_notes) {
  berth::OciConfig c;
  berth::Error e;
  EXPECT_EQ(berth::parse_oci_config(berth::default_oci_config(), "/b", "x", &c, &e), 0);
  EXPECT_EQ(c.spec.args[0], "sh");
  EXPECT_EQ(c.spec.cgroup_parent, "");
  EXPECT_EQ(c.cgroup_leaf, "x");
  EXPECT_TRUE(c.spec.namespaces & CLONE_NEWCGROUP);
  EXPECT_EQ(c.notes.size(), 0u);
}

struct BadConfig {
  std::string from;
  std::string to;
  std::string field;  // the error's path must start with this
};

TEST(oci_bad_configs_name_the_field) {
  const BadConfig cases[] = {
      {"\"args\": [\"sleep\", \"100\"]", "\"args\": []", "process.args:"},
      {"\"args\": [\"sleep\", \"100\"]", "\"args\": \"sleep\"", "process.args:"},
      {"\"cwd\": \"/tmp\"", "\"cwd\": \"tmp\"", "process.cwd:"},
      {"\"terminal\": false", "\"terminal\": true", "process.terminal:"},
      {"\"uid\": 1000", "\"uid\": -1", "process.user.uid:"},
      {"{\"type\": \"ipc\"}", "{\"type\": \"bogus\"}", "linux.namespaces[2].type:"},
      {"{\"type\": \"ipc\"}", "{\"type\": \"ipc\", \"path\": \"/proc/1/ns/ipc\"}", "linux.namespaces[2].path:"},
      {", {\"type\": \"mount\"}", "", "linux.namespaces:"},
      {"\"limit\": 67108864", "\"limit\": \"64M\"", "linux.resources.memory.limit:"},
      {"\"quota\": 50000", "\"quota\": 0", "linux.resources.cpu.quota:"},
      {"\"cgroupsPath\": \"/bench/runc/c1\"", "\"cgroupsPath\": \"/a/../b\"", "linux.cgroupsPath:"},
      {"\"maskedPaths\"", "\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\"}, \"maskedPaths\"", "linux.seccomp:"},
      {"\"type\": \"proc\", \"source\": \"proc\"}", "\"type\": \"proc\", \"source\": \"proc\"}, {\"destination\": \"/data\", \"type\": \"nfs\", \"source\": \"srv:/x\"}", "mounts[1]:"},
      {"\"hostname\": \"runc\"", "\"hostname\": 7", "hostname:"},
      {"\"ociVersion\": \"1.0.2-dev\"", "\"ociVersion\": \"0.5\"", "ociVersion:"},
      {"\"path\": \"rootfs\"", "\"path\": \"\"", "root.path:"},
      {"{\"type\": \"uts\"}, ", "", "hostname:"},
      {"\"annotations\"", "\"hooks\": {}, \"annotations\"", "hooks:"},
  };
  for (const BadConfig& c : cases) {
    berth::OciConfig out;
    berth::Error e;
    std::string text = replace(RUNC_SPEC, c.from, c.to);
    int rc = berth::parse_oci_config(text, "/b", "c1", &out, &e);
    EXPECT_EQ(c.field + " rc=" + std::to_string(rc), c.field + " rc=" + std::to_string(-EINVAL));
    EXPECT_EQ(e.step, berth::OCI_CONFIG_STEP);
    EXPECT_EQ(e.path.substr(0, c.field.size()), c.field);
  }
}

TEST(oci_invalid_json_is_an_error_not_a_crash) {
  berth::OciConfig out;
  berth::Error e;
  EXPECT_EQ(berth::parse_oci_config("{\"ociVersion\": ", "/b", "c", &out, &e), -EINVAL);
  EXPECT_EQ(e.path.substr(0, 12), "invalid JSON");
  EXPECT_EQ(berth::parse_oci_config("[]", "/b", "c", &out, &e), -EINVAL);
  EXPECT_EQ(e.path.substr(0, 7), "config:");
}

TEST(oci_maps_binds_caps_rlimits_and_user_namespaces) {
  std::string text = replace(RUNC_SPEC, "{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"}",
                             "{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"}, "
                             "{\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"data\", \"options\": [\"rbind\", \"ro\"]}");
  text = replace(text, "{\"type\": \"mount\"}", "{\"type\": \"mount\"}, {\"type\": \"user\"}");
  text = replace(text, "\"cgroupsPath\"",
                 "\"uidMappings\": [{\"containerID\": 0, \"hostID\": 200000, \"size\": 65536}], "
                 "\"gidMappings\": [{\"containerID\": 0, \"hostID\": 300000, \"size\": 65536}], \"cgroupsPath\"");
  berth::OciConfig c;
  berth::Error e;
  EXPECT_EQ(berth::parse_oci_config(text, "/b", "c1", &c, &e), 0);
  EXPECT_EQ(c.spec.mounts.size(), 1u);
  EXPECT_EQ(c.spec.mounts[0].source, "/b/data");
  EXPECT_EQ(c.spec.mounts[0].target, "/data");
  EXPECT_TRUE(c.spec.mounts[0].readonly);
  EXPECT_TRUE(c.spec.user_namespace);
  EXPECT_TRUE(!(c.spec.namespaces & CLONE_NEWUSER));
  EXPECT_EQ(c.spec.uid_map_base, 200000u);
  EXPECT_EQ(c.spec.gid_map_base, 300000u);
  EXPECT_EQ(c.spec.id_map_size, 65536u);
  EXPECT_EQ(c.spec.cap_add.size(), 3u);  // the bounding set, as listed
  EXPECT_EQ(c.spec.cap_drop.size(), 11u);  // Docker's 14 minus AUDIT_WRITE, KILL, NET_BIND_SERVICE
  EXPECT_EQ(c.spec.rlimits.size(), 1u);
  EXPECT_EQ(c.spec.rlimits[0].soft, 1024u);
  EXPECT_EQ(c.spec.groups.size(), 1u);
  EXPECT_TRUE(c.spec.read_only_rootfs);
  EXPECT_TRUE(!c.spec.seccomp);  // no linux.seccomp: no filter, as runc
}
