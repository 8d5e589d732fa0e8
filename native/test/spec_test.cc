// spec_test.cc: the shim wire format (parse_spec) — full round trip, escapes, rejections.
#include <errno.h>

#include <linux/capability.h>

#include "../src/lib/security.h"
#include "../src/lib/spec.h"
#include "harness.h"

using berth::Error;
using berth::Spec;

TEST(spec_parses_every_key) {
  Spec s;
  Error e;
  int rc = berth::parse_spec(
      "id=c1\nhostname=h\nlower=/l/2\nlower=/l/1\narg=sh\narg=-c\narg=echo a\\nb\\\\\n"
      "env=A=1\ncwd=/srv\nuid=1000\ngid=1001\nmemory=67108864\ncpuMillis=500\npids=64\n"
      "cgroupParent=p/q\ncgroupRoot=/fake\ncgroupVersion=v2\nlogMaxBytes=4096\n"
      "rootfsDir=/bundle/rootfs\nnamespaces=4026531840\n",
      &s, &e);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(s.id, "c1");
  EXPECT_EQ(s.hostname, "h");
  EXPECT_EQ(s.lower_dirs.size(), 2u);
  EXPECT_EQ(s.lower_dirs[0], "/l/2");
  EXPECT_EQ(s.args.size(), 3u);
  EXPECT_EQ(s.args[2], "echo a\nb\\");
  EXPECT_EQ(s.env[0], "A=1");
  EXPECT_EQ(s.cwd, "/srv");
  EXPECT_EQ(s.uid, 1000u);
  EXPECT_EQ(s.gid, 1001u);
  EXPECT_EQ(s.memory_bytes, 67108864u);
  EXPECT_EQ(s.cpu_millis, 500u);
  EXPECT_EQ(s.pids, 64u);
  EXPECT_EQ(s.cgroup_parent, "p/q");
  EXPECT_EQ(s.cgroup_root, "/fake");
  EXPECT_EQ(s.cgroup_version, "v2");
  EXPECT_EQ(s.log_max_bytes, 4096u);
  EXPECT_EQ(s.rootfs_dir, "/bundle/rootfs");
  EXPECT_EQ(s.namespaces, 4026531840u);
}

TEST(spec_rootfs_dir_replaces_lower_dirs) {
  Spec s;
  Error e;
  EXPECT_EQ(berth::parse_spec("id=c\narg=true\nrootfsDir=/r\n", &s, &e), 0);
  EXPECT_TRUE(s.lower_dirs.empty());
}

struct Rejection {
  const char* text;
  const char* key;
};

TEST(spec_rejections_name_the_key) {
  const Rejection cases[] = {
      {"id=c\narg=true\nlower=/l\nbogus=1\n", "bogus"},
      {"id=c\narg=true\nlower=/l\nuid=-1\n", "uid"},
      {"id=c\narg=true\nlower=/l\nuid=4294967296\n", "uid"},
      {"id=c\narg=true\nlower=/l\nmemory=12abc\n", "memory"},
      {"arg=true\nlower=/l\n", "id"},
      {"id=c\nlower=/l\n", "arg"},
      {"id=c\narg=true\n", "lower"},
      {"id=c\narg=true\nlower=/l\ncgroupVersion=v3\n", "cgroupVersion"},
      {"id=c\nno equals sign\n", "no equals sign"},
  };
  for (const Rejection& c : cases) {
    Spec s;
    Error e;
    EXPECT_EQ(berth::parse_spec(c.text, &s, &e), -EINVAL);
    EXPECT_EQ(e.step, "parse spec");
    EXPECT_EQ(e.path, c.key);
  }
}

TEST(resolve_caps_adds_after_dropping_all) {
  berth::CapSets caps;
  berth::Error e;
  EXPECT_EQ(berth::resolve_caps({"NET_BIND_SERVICE"}, {"ALL"}, 0, &caps, &e), 0);
  EXPECT_EQ(caps.bounding, uint64_t{1} << CAP_NET_BIND_SERVICE);
  EXPECT_EQ(caps.effective, uint64_t{1} << CAP_NET_BIND_SERVICE);
  EXPECT_EQ(berth::resolve_caps({}, {"CHOWN"}, 0, &caps, &e), 0);
  EXPECT_EQ(caps.bounding & (uint64_t{1} << CAP_CHOWN), uint64_t{0});
  EXPECT_EQ(berth::resolve_caps({"SYS_ADMIN"}, {}, 1000, &caps, &e), 0);
  EXPECT_TRUE((caps.bounding & (uint64_t{1} << CAP_SYS_ADMIN)) != 0);
  EXPECT_EQ(caps.permitted, uint64_t{0});
}
