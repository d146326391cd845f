/*
 * The kernel's FUSE protocol, as far as thaw speaks it (include/uapi/linux/fuse.h, protocol 7.40+).
 *
 * Written out here rather than taken from <linux/fuse.h>: Debian 12's linux-libc-dev is protocol
 * 7.38 and lacks passthrough (FUSE_PASSTHROUGH, FOPEN_PASSTHROUGH, fuse_backing_map, the
 * max_stack_depth field of fuse_init_out). Values and layouts are those of the kernel UAPI; the
 * byte sizes are checked by the static asserts below (../shared/reference/fuse-passthrough.md).
 */
#ifndef THAW_FUSE_PROTOCOL_H
#define THAW_FUSE_PROTOCOL_H

#include <stdint.h>
#include <sys/ioctl.h>

#define FUSE_KERNEL_VERSION 7
#define FUSE_OUR_MINOR 40
#define FUSE_ROOT_ID 1
#define FUSE_MIN_READ_BUFFER 8192

enum fuse_opcode {
  FUSE_LOOKUP = 1,
  FUSE_FORGET = 2,
  FUSE_GETATTR = 3,
  FUSE_SETATTR = 4,
  FUSE_READLINK = 5,
  FUSE_SYMLINK = 6,
  FUSE_MKNOD = 8,
  FUSE_MKDIR = 9,
  FUSE_UNLINK = 10,
  FUSE_RMDIR = 11,
  FUSE_RENAME = 12,
  FUSE_LINK = 13,
  FUSE_OPEN = 14,
  FUSE_READ = 15,
  FUSE_WRITE = 16,
  FUSE_STATFS = 17,
  FUSE_RELEASE = 18,
  FUSE_FSYNC = 20,
  FUSE_SETXATTR = 21,
  FUSE_GETXATTR = 22,
  FUSE_LISTXATTR = 23,
  FUSE_REMOVEXATTR = 24,
  FUSE_FLUSH = 25,
  FUSE_INIT = 26,
  FUSE_OPENDIR = 27,
  FUSE_READDIR = 28,
  FUSE_RELEASEDIR = 29,
  FUSE_FSYNCDIR = 30,
  FUSE_ACCESS = 34,
  FUSE_CREATE = 35,
  FUSE_INTERRUPT = 36,
  FUSE_DESTROY = 38,
  FUSE_IOCTL = 39,
  FUSE_BATCH_FORGET = 42,
  FUSE_FALLOCATE = 43,
  FUSE_READDIRPLUS = 44,
  FUSE_RENAME2 = 45,
  FUSE_COPY_FILE_RANGE = 47,
  FUSE_TMPFILE = 51,
};

/* fuse_init_out.flags (and flags2 << 32 once FUSE_INIT_EXT is set) */
#define FUSE_ASYNC_READ (1ULL << 0)
#define FUSE_BIG_WRITES (1ULL << 5)
#define FUSE_DO_READDIRPLUS (1ULL << 13)
#define FUSE_PARALLEL_DIROPS (1ULL << 18)
#define FUSE_MAX_PAGES (1ULL << 22)
#define FUSE_CACHE_SYMLINKS (1ULL << 23)
#define FUSE_INIT_EXT (1ULL << 30)
#define FUSE_PASSTHROUGH (1ULL << 37)
#define FUSE_ALLOW_IDMAP (1ULL << 40)

/* fuse_open_out.open_flags */
#define FOPEN_KEEP_CACHE (1u << 1)
#define FOPEN_CACHE_DIR (1u << 3)
#define FOPEN_NOFLUSH (1u << 5)
#define FOPEN_PASSTHROUGH (1u << 7)

/* 40 bytes: every request starts with it. */
struct fuse_in_header {
  uint32_t len;
  uint32_t opcode;
  uint64_t unique;
  uint64_t nodeid;
  uint32_t uid;
  uint32_t gid;
  uint32_t pid;
  uint16_t total_extlen;
  uint16_t padding;
};

/* 16 bytes: every reply starts with it; error is 0 or a negative errno. */
struct fuse_out_header {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};

/* 64 bytes since 7.36. */
struct fuse_init_in {
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint32_t flags2;
  uint32_t unused[11];
};

/* 64 bytes: flags2 at offset 32, max_stack_depth at 36 (7.40). */
struct fuse_init_out {
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint16_t max_background;
  uint16_t congestion_threshold;
  uint32_t max_write;
  uint32_t time_gran;
  uint16_t max_pages;
  uint16_t map_alignment;
  uint32_t flags2;
  uint32_t max_stack_depth;
  uint16_t unused[12];
};

/* 88 bytes. */
struct fuse_attr {
  uint64_t ino;
  uint64_t size;
  uint64_t blocks;
  uint64_t atime;
  uint64_t mtime;
  uint64_t ctime;
  uint32_t atimensec;
  uint32_t mtimensec;
  uint32_t ctimensec;
  uint32_t mode;
  uint32_t nlink;
  uint32_t uid;
  uint32_t gid;
  uint32_t rdev;
  uint32_t blksize;
  uint32_t flags;
};

/* 128 bytes; nodeid 0 is a negative entry the kernel caches for entry_valid. */
struct fuse_entry_out {
  uint64_t nodeid;
  uint64_t generation;
  uint64_t entry_valid;
  uint64_t attr_valid;
  uint32_t entry_valid_nsec;
  uint32_t attr_valid_nsec;
  struct fuse_attr attr;
};

/* 104 bytes. */
struct fuse_attr_out {
  uint64_t attr_valid;
  uint32_t attr_valid_nsec;
  uint32_t dummy;
  struct fuse_attr attr;
};

struct fuse_open_in {
  uint32_t flags;
  uint32_t open_flags;
};

/* 16 bytes; backing_id is used with FOPEN_PASSTHROUGH. */
struct fuse_open_out {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};

/* 40 bytes. */
struct fuse_read_in {
  uint64_t fh;
  uint64_t offset;
  uint32_t size;
  uint32_t read_flags;
  uint64_t lock_owner;
  uint32_t flags;
  uint32_t padding;
};

struct fuse_release_in {
  uint64_t fh;
  uint32_t flags;
  uint32_t release_flags;
  uint64_t lock_owner;
};

/* Followed by the attribute name, NUL-terminated. */
struct fuse_getxattr_in {
  uint32_t size;
  uint32_t padding;
};

struct fuse_getxattr_out {
  uint32_t size;
  uint32_t padding;
};

/* 80 bytes. */
struct fuse_kstatfs {
  uint64_t blocks;
  uint64_t bfree;
  uint64_t bavail;
  uint64_t files;
  uint64_t ffree;
  uint32_t bsize;
  uint32_t namelen;
  uint32_t frsize;
  uint32_t padding;
  uint32_t spare[6];
};

/* A directory entry: 24 bytes, then the name, padded to 8 bytes. */
struct fuse_dirent {
  uint64_t ino;
  uint64_t off;
  uint32_t namelen;
  uint32_t type;
  char name[];
};

/* READDIRPLUS: the entry as a LOOKUP would answer it, then the dirent. */
struct fuse_direntplus {
  struct fuse_entry_out entry_out;
  struct fuse_dirent dirent;
};

/* FUSE_DEV_IOC_BACKING_OPEN registers an open file as a passthrough backing; 16 bytes. */
struct fuse_backing_map {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};

#define FUSE_DEV_IOC_MAGIC 229
#define FUSE_DEV_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct fuse_backing_map)
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)

/*
 * FUSE_NOTIFY_RESEND (7.40, Linux 6.9): written as an out header with unique 0 and this code as
 * its error, it makes the kernel queue again every request a server read and never answered. The
 * resent requests carry FUSE_UNIQUE_RESEND in their unique; replies must too.
 */
#define FUSE_NOTIFY_RESEND 7
#define FUSE_UNIQUE_RESEND (1ULL << 63)

#define FUSE_DIRENT_ALIGN(x) (((x) + 7) & ~(size_t)7)

_Static_assert(sizeof(struct fuse_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct fuse_out_header) == 16, "fuse_out_header");
_Static_assert(sizeof(struct fuse_init_in) == 64, "fuse_init_in");
_Static_assert(sizeof(struct fuse_init_out) == 64, "fuse_init_out");
_Static_assert(sizeof(struct fuse_attr) == 88, "fuse_attr");
_Static_assert(sizeof(struct fuse_entry_out) == 128, "fuse_entry_out");
_Static_assert(sizeof(struct fuse_attr_out) == 104, "fuse_attr_out");
_Static_assert(sizeof(struct fuse_open_out) == 16, "fuse_open_out");
_Static_assert(sizeof(struct fuse_read_in) == 40, "fuse_read_in");
_Static_assert(sizeof(struct fuse_kstatfs) == 80, "fuse_kstatfs");
_Static_assert(sizeof(struct fuse_dirent) == 24, "fuse_dirent");
_Static_assert(sizeof(struct fuse_backing_map) == 16, "fuse_backing_map");
_Static_assert(FUSE_DEV_IOC_BACKING_OPEN == 0x4010e501, "FUSE_DEV_IOC_BACKING_OPEN");

#endif
