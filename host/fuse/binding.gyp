{
  "targets": [
    {
      "target_name": "thaw_fuse",
      "sources": ["native/thaw_fuse.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "thaw-fuse-keeper",
      "type": "executable",
      "sources": ["native/thaw_fuse_keeper.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
