// spec_test.cc: the shim wire format (parse_spec) — full round trip, escapes, rejections.
#include <errno.h>

#include <linux/capability.h>

#include "../src/lib/projected.h"
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

TEST(spec_parses_tmpfs_and_files) {
  Spec s;
  Error e;
  // "aGVsbG8=" is "hello"; "AAEC/w==" the bytes 00 01 02 ff; an empty file has empty base64.
  int rc = berth::parse_spec(
      "id=c\narg=true\nlower=/l\ntmpfs=/run/cache\t1048576\t1777\trw\ntmpfs=/ro\t4096\t755\tro\n"
      "file=/run/secrets/db/password\t400\t1000\t1001\taGVsbG8=\n"
      "file=/etc/bin.conf\t644\t0\t0\tAAEC/w==\nfile=/empty\t444\t0\t0\t\n",
      &s, &e);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(s.tmpfs.size(), 2u);
  EXPECT_EQ(s.tmpfs[0].target, "/run/cache");
  EXPECT_EQ(s.tmpfs[0].size_bytes, 1048576u);
  EXPECT_EQ(s.tmpfs[0].mode, 01777u);
  EXPECT_TRUE(!s.tmpfs[0].readonly);
  EXPECT_TRUE(s.tmpfs[1].readonly);
  EXPECT_EQ(s.tmpfs[1].mode, 0755u);
  EXPECT_EQ(s.files.size(), 3u);
  EXPECT_EQ(s.files[0].target, "/run/secrets/db/password");
  EXPECT_EQ(s.files[0].mode, 0400u);
  EXPECT_EQ(s.files[0].uid, 1000u);
  EXPECT_EQ(s.files[0].gid, 1001u);
  EXPECT_EQ(s.files[0].content, "hello");
  EXPECT_EQ(s.files[1].content, std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(s.files[2].content, "");
}

TEST(spec_without_files_drops_only_file_lines) {
  std::string text = "id=c\narg=true\nfile=/a\t400\t0\t0\taGVsbG8=\nenv=file=x\nlower=/l\nfile=/b\t400\t0\t0\t\n";
  EXPECT_EQ(berth::spec_without_files(text), "id=c\narg=true\nenv=file=x\nlower=/l\n");
  Spec s;
  Error e;
  EXPECT_EQ(berth::parse_spec(berth::spec_without_files(text), &s, &e), 0);
  EXPECT_TRUE(s.files.empty());
}

TEST(spec_rejects_malformed_tmpfs_and_files) {
  const char* const lines[] = {
      "tmpfs=relative\t4096\t1777\trw",       // target not absolute
      "tmpfs=/\t4096\t1777\trw",              // the root itself
      "tmpfs=/a/../b\t4096\t1777\trw",        // ".." component
      "tmpfs=/t\t0\t1777\trw",                // size 0
      "tmpfs=/t\t4096\t1778\trw",             // not octal
      "tmpfs=/t\t4096\t17777\trw",            // mode above 07777
      "tmpfs=/t\t4096\t1777\tmaybe",          // neither ro nor rw
      "tmpfs=/t\t4096\t1777",                 // a field missing
      "file=/f\t400\t0\t0\taGVsbG8",          // base64 without padding
      "file=/f\t400\t0\t0\taGV*bG8=",         // not base64
      "file=/f\t400\t0\t0\ta=VsbG8=",         // padding in the middle
      "file=/f\t400\t-1\t0\taGVsbG8=",        // negative uid
      "file=/f\t400\t0\t4294967296\taGVsbG8=",  // gid above 32 bits
      "file=/f\t999\t0\t0\taGVsbG8=",         // not octal
      "file=f\t400\t0\t0\taGVsbG8=",          // target not absolute
      "file=/f\t400\t0\t0",                   // content missing
      "file=/f\t400\t0\t0\taGVsbG8=\textra",  // a field too many
  };
  for (const char* line : lines) {
    Spec s;
    Error e;
    std::string text = std::string("id=c\narg=true\nlower=/l\n") + line + "\n";
    EXPECT_EQ(berth::parse_spec(text, &s, &e), -EINVAL);
    EXPECT_EQ(e.path, std::string(line).substr(0, std::string(line).find('=')));
  }
  Spec s;
  Error e;
  EXPECT_EQ(berth::parse_spec("id=c\narg=true\nlower=/l\nuserNamespace=1\nidMapSize=1000\n"
                              "file=/f\t400\t1000\t0\t\n", &s, &e), -EINVAL);
  EXPECT_EQ(e.path, "file: uid/gid outside the id map");
}

TEST(files_staging_bytes_counts_whole_pages_per_file) {
  Spec s;
  EXPECT_EQ(berth::files_staging_bytes(s), 64ull * 1024);
  s.files.push_back({"/a", 0400, 0, 0, std::string(1, 'x')});
  s.files.push_back({"/b", 0400, 0, 0, std::string(4097, 'x')});
  // 1 byte -> one page, 4097 bytes -> two pages, plus one page per file and the slack.
  EXPECT_EQ(berth::files_staging_bytes(s), 64ull * 1024 + (1 + 2 + 2) * 4096ull);
}
