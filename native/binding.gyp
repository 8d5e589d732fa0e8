{
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fexceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "defines": ["_GNU_SOURCE"]
  },
  "targets": [
    {
      "target_name": "berth_core",
      "type": "static_library",
      "sources": [
        "src/lib/cgroup.cc",
        "src/lib/cgroup_v1.cc",
        "src/lib/cgroup_v2.cc",
        "src/lib/container.cc",
        "src/lib/fsutil.cc",
        "src/lib/logpump.cc",
        "src/lib/spec.cc"
      ],
      "cflags": ["-fPIC"]
    },
    {
      "target_name": "berth_native",
      "sources": ["src/addon/addon.cc"],
      "dependencies": ["berth_core"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
    },
    {
      "target_name": "berth-shim",
      "type": "executable",
      "sources": ["src/shim/main.cc"],
      "dependencies": ["berth_core"]
    }
  ]
}
