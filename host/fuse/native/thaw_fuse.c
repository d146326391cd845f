/*
 * thaw's FUSE layer: a read-only filesystem served on /dev/fuse directly (no libfuse), with the
 * answers computed in JavaScript and the protocol spoken here.
 *
 * - mount(): opens /dev/fuse with O_CLOEXEC (no child process, runc or a node, ever inherits the
 *   connection), mount(2)s it, answers FUSE_INIT (1 MiB reads, readdirplus, parallel directory
 *   operations, cached symlinks, passthrough where the kernel has it) and starts reader threads.
 * - Reader threads answer what needs no filesystem knowledge themselves (opendir, release, flush,
 *   forget, interrupt, ioctl, writes: EROFS) and hand the rest to JS through a thread-safe
 *   function without waiting: JS answers whenever it is ready (a read may wait for the network)
 *   by calling a reply function, which writes the reply to /dev/fuse from the JS thread.
 * - Passthrough (Linux 6.9+): JS answers an OPEN with the descriptor of a local file holding the
 *   file's bytes; it is registered with FUSE_DEV_IOC_BACKING_OPEN and the kernel then reads and
 *   maps that file itself, so no READ of it ever reaches thaw. An inode opened in the page-cache
 *   mode cannot switch to passthrough while such opens exist (the kernel answers ETXTBSY), and an
 *   inode in passthrough keeps its backing file for every further open until the last release:
 *   the per-inode counts below keep that rule.
 *
 * The byte layouts are in protocol.h. Threads never call into V8; only the reply functions and
 * call_js run on the JS thread.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "keeper_wire.h"
#include "protocol.h"

#define MAX_WRITE (128 * 1024)
#define REQUEST_BUFFER (MAX_WRITE + 4096)
#define MAX_PAGES 256
#define MAX_THREADS 16
#define DIRECT_MAX (MAX_PAGES * 4096)

/* What JS is asked; the numbers are the handler's first argument (fuse-session.ts knows them). */
enum js_op {
  OP_GONE = 0,
  OP_LOOKUP = 1,
  OP_GETATTR = 2,
  OP_READLINK = 3,
  OP_OPEN = 4,
  OP_READ = 5,
  OP_READDIR = 6,
  OP_GETXATTR = 7,
  OP_LISTXATTR = 8,
  OP_STATFS = 9,
};

/* Open counts of one inode, by mode; backing_id > 0 while passthrough opens exist. */
struct inode_io {
  int32_t backing_id;
  uint32_t passthrough_opens;
  uint32_t cached_opens;
};

typedef struct session {
  int fd;
  int wake_fd;
  char *dir;
  char *source;
  char *fstype;
  char *mount_options;
  int nthreads;
  int started_threads;
  pthread_t threads[MAX_THREADS];
  napi_threadsafe_function tsfn;
  napi_ref self;
  atomic_int stopping;
  atomic_int closed;
  atomic_int gone_sent;
  /* options */
  uint64_t entry_valid, attr_valid, negative_valid;
  int want_passthrough;
  /* negotiated */
  uint32_t proto_minor;
  uint64_t flags;
  uint32_t max_readahead;
  int passthrough;
  /*
   * inode io table, indexed by nodeid: a shared mapping of a memfd, so that a process that adopts
   * the session (adopt()) knows which inodes are in passthrough and with which backing ids.
   */
  pthread_mutex_t io_lock;
  int io_fd;
  struct inode_io *io;
  size_t io_len;
  int resend_error;
  /* direct reads (see struct direct_blob) */
  pthread_mutex_t direct_lock;
  atomic_int direct_on;
  atomic_uint_fast64_t direct_reads;
  struct direct_blob *dblobs;
  uint32_t ndblobs;
  struct direct_inode *dinodes;
  size_t dinodes_len;
  /* a failure of mount or unmount, for the promise */
  int error;
  char error_message[256];
  napi_deferred deferred;
  napi_async_work work;
} session_t;

/*
 * Direct reads: a READ of a file whose bytes are all in the host's frame cache is answered here,
 * by pread from the blob's cache file, without entering JS. JS registers each blob of the image
 * (its cache file, its frames' decoded offsets and lengths, and a byte per frame it sets once the
 * frame is readable) and, when it answers an OPEN, where the file's bytes are in which blob.
 */
struct direct_blob {
  int fd;
  uint32_t nframes;
  uint64_t *uoff;
  uint64_t *ulen;
  const volatile uint8_t *present; /* JS memory, kept alive by present_ref */
  napi_ref present_ref;
};

struct direct_inode {
  int32_t blob; /* the blob's index + 1; 0: not mapped */
  uint64_t base;
  uint64_t size;
};

/* A request handed to JS. */
typedef struct pending {
  session_t *s;
  uint32_t op;
  uint64_t unique;
  uint64_t nodeid;
  uint64_t a, b;
  uint32_t c;
  uint32_t namelen;
  char name[];
} pending_t;

/* ---------- replies (any thread) ---------- */

static void write_reply(session_t *s, uint64_t unique, int error, const struct iovec *data,
                        int count) {
  struct iovec iov[4];
  struct fuse_out_header out = {.len = sizeof out, .error = -error, .unique = unique};
  iov[0].iov_base = &out;
  iov[0].iov_len = sizeof out;
  for (int i = 0; i < count && i < 3; i++) {
    iov[i + 1] = data[i];
    out.len += data[i].iov_len;
  }
  if (atomic_load(&s->closed)) return;
  /* ENOENT: the request was interrupted or the connection aborted; nothing to do. */
  while (writev(s->fd, iov, count + 1) < 0 && errno == EINTR) {
  }
}

static void reply_error(session_t *s, uint64_t unique, int error) {
  write_reply(s, unique, error, NULL, 0);
}

static void reply_bytes(session_t *s, uint64_t unique, const void *p, size_t n) {
  struct iovec v = {.iov_base = (void *)p, .iov_len = n};
  write_reply(s, unique, 0, &v, 1);
}

/* ---------- passthrough bookkeeping ---------- */

static struct inode_io *io_of(session_t *s, uint64_t nodeid) {
  if (nodeid >= s->io_len) {
    size_t len = s->io_len ? s->io_len : 1024;
    while (len <= nodeid) len *= 2;
    if (ftruncate(s->io_fd, (off_t)(len * sizeof *s->io)) != 0) return NULL; /* zero-filled */
    void *grown = s->io ? mremap(s->io, s->io_len * sizeof *s->io, len * sizeof *s->io, MREMAP_MAYMOVE)
                        : mmap(NULL, len * sizeof *s->io, PROT_READ | PROT_WRITE, MAP_SHARED, s->io_fd, 0);
    if (grown == MAP_FAILED) return NULL;
    s->io = grown;
    s->io_len = len;
  }
  return &s->io[nodeid];
}

/* Maps the io table an earlier server of the session left in io_fd. */
static int io_map_existing(session_t *s) {
  struct stat st;
  if (fstat(s->io_fd, &st) != 0) return errno;
  size_t len = (size_t)st.st_size / sizeof *s->io;
  if (len == 0) return 0;
  void *p = mmap(NULL, len * sizeof *s->io, PROT_READ | PROT_WRITE, MAP_SHARED, s->io_fd, 0);
  if (p == MAP_FAILED) return errno;
  s->io = p;
  s->io_len = len;
  return 0;
}

/* fh of an open: which count its release gives back. */
#define FH_CACHED 1
#define FH_PASSTHROUGH 2

static void release_open(session_t *s, uint64_t nodeid, uint64_t fh) {
  pthread_mutex_lock(&s->io_lock);
  struct inode_io *io = nodeid < s->io_len ? &s->io[nodeid] : NULL;
  if (io && fh == FH_PASSTHROUGH && io->passthrough_opens > 0) {
    if (--io->passthrough_opens == 0 && io->backing_id > 0) {
      uint32_t id = (uint32_t)io->backing_id;
      ioctl(s->fd, FUSE_DEV_IOC_BACKING_CLOSE, &id);
      io->backing_id = 0;
    }
  } else if (io && fh == FH_CACHED && io->cached_opens > 0) {
    io->cached_opens--;
  }
  pthread_mutex_unlock(&s->io_lock);
}

/* ---------- direct reads ---------- */

/* 1 when answered here; 0 when JS must answer (not mapped, a frame missing, a short pread). */
static int direct_read(session_t *s, const struct fuse_in_header *in, const struct fuse_read_in *r,
                       char *scratch) {
  struct direct_inode d = {.blob = 0};
  struct direct_blob b;
  pthread_mutex_lock(&s->direct_lock);
  if (in->nodeid < s->dinodes_len) d = s->dinodes[in->nodeid];
  int ok = d.blob > 0 && (uint32_t)(d.blob - 1) < s->ndblobs;
  if (ok) b = s->dblobs[d.blob - 1]; /* its arrays live as long as the session */
  pthread_mutex_unlock(&s->direct_lock);
  if (!ok) return 0;
  if (r->offset >= d.size) {
    reply_bytes(s, in->unique, NULL, 0);
    atomic_fetch_add(&s->direct_reads, 1);
    return 1;
  }
  uint64_t len = d.size - r->offset;
  if (len > r->size) len = r->size;
  if (len > DIRECT_MAX) len = DIRECT_MAX;
  uint64_t start = d.base + r->offset, end = start + len;
  /* the last frame starting at or before `start`, then every frame up to `end`, all present */
  uint32_t lo = 0, hi = b.nframes;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (b.uoff[mid] <= start) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return 0;
  uint64_t covered = start;
  for (uint32_t i = lo - 1; covered < end; i++) {
    if (i >= b.nframes || b.uoff[i] > covered || !b.present[i]) return 0;
    covered = b.uoff[i] + b.ulen[i];
  }
  ssize_t got = pread(b.fd, scratch, len, (off_t)start);
  if (got != (ssize_t)len) return 0;
  reply_bytes(s, in->unique, scratch, len);
  atomic_fetch_add(&s->direct_reads, 1);
  return 1;
}

/* ---------- reader threads ---------- */

static void to_js(session_t *s, uint32_t op, const struct fuse_in_header *in, uint64_t a, uint64_t b,
                  uint32_t c, const char *name) {
  size_t namelen = name ? strlen(name) : 0;
  pending_t *p = malloc(sizeof *p + namelen + 1);
  if (!p) {
    reply_error(s, in->unique, ENOMEM);
    return;
  }
  *p = (pending_t){.s = s, .op = op, .unique = in->unique, .nodeid = in->nodeid,
                   .a = a, .b = b, .c = c, .namelen = (uint32_t)namelen};
  if (name) memcpy(p->name, name, namelen + 1);
  if (napi_call_threadsafe_function(s->tsfn, p, napi_tsfn_nonblocking) != napi_ok) {
    free(p);
    reply_error(s, in->unique, EIO);
  }
}

static int direct_read(session_t *s, const struct fuse_in_header *in, const struct fuse_read_in *r,
                       char *scratch);

static void handle(session_t *s, const char *buf, size_t n, char *scratch) {
  const struct fuse_in_header *in = (const void *)buf;
  const char *arg = buf + sizeof *in;
  if (n < sizeof *in || in->len != n) return;
  switch (in->opcode) {
  case FUSE_FORGET:
  case FUSE_BATCH_FORGET:
  case FUSE_INTERRUPT:
    return; /* no reply; inode numbers are the index's and live as long as the mount */
  case FUSE_LOOKUP:
    to_js(s, OP_LOOKUP, in, 0, 0, 0, arg);
    return;
  case FUSE_GETATTR:
    to_js(s, OP_GETATTR, in, 0, 0, 0, NULL);
    return;
  case FUSE_READLINK:
    to_js(s, OP_READLINK, in, 0, 0, 0, NULL);
    return;
  case FUSE_OPEN: {
    const struct fuse_open_in *o = (const void *)arg;
    if ((o->flags & O_ACCMODE) != O_RDONLY || (o->flags & O_TRUNC)) {
      reply_error(s, in->unique, EROFS);
      return;
    }
    to_js(s, OP_OPEN, in, o->flags, 0, 0, NULL);
    return;
  }
  case FUSE_READ: {
    const struct fuse_read_in *r = (const void *)arg;
    if (atomic_load(&s->direct_on) && direct_read(s, in, r, scratch)) return;
    to_js(s, OP_READ, in, r->fh, r->offset, r->size, NULL);
    return;
  }
  case FUSE_READDIR:
  case FUSE_READDIRPLUS: {
    const struct fuse_read_in *r = (const void *)arg;
    to_js(s, OP_READDIR, in, in->opcode == FUSE_READDIRPLUS, r->offset, r->size, NULL);
    return;
  }
  case FUSE_GETXATTR: {
    const struct fuse_getxattr_in *g = (const void *)arg;
    to_js(s, OP_GETXATTR, in, 0, 0, g->size, arg + sizeof *g);
    return;
  }
  case FUSE_LISTXATTR: {
    const struct fuse_getxattr_in *g = (const void *)arg;
    to_js(s, OP_LISTXATTR, in, 0, 0, g->size, NULL);
    return;
  }
  case FUSE_STATFS:
    to_js(s, OP_STATFS, in, 0, 0, 0, NULL);
    return;
  case FUSE_OPENDIR: {
    /* The listing never changes: the kernel may cache it across opens. */
    struct fuse_open_out out = {.open_flags = FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR};
    reply_bytes(s, in->unique, &out, sizeof out);
    return;
  }
  case FUSE_RELEASE: {
    const struct fuse_release_in *r = (const void *)arg;
    release_open(s, in->nodeid, r->fh);
    reply_error(s, in->unique, 0);
    return;
  }
  case FUSE_RELEASEDIR:
  case FUSE_FLUSH:
  case FUSE_FSYNC:
  case FUSE_FSYNCDIR:
    reply_error(s, in->unique, 0);
    return;
  case FUSE_DESTROY:
    reply_error(s, in->unique, 0);
    return;
  case FUSE_IOCTL:
    reply_error(s, in->unique, ENOTTY); /* isatty() and friends: not a terminal */
    return;
  case FUSE_SETATTR:
  case FUSE_SYMLINK:
  case FUSE_MKNOD:
  case FUSE_MKDIR:
  case FUSE_UNLINK:
  case FUSE_RMDIR:
  case FUSE_RENAME:
  case FUSE_RENAME2:
  case FUSE_LINK:
  case FUSE_WRITE:
  case FUSE_SETXATTR:
  case FUSE_REMOVEXATTR:
  case FUSE_CREATE:
  case FUSE_TMPFILE:
  case FUSE_FALLOCATE:
  case FUSE_COPY_FILE_RANGE:
    reply_error(s, in->unique, EROFS);
    return;
  default:
    reply_error(s, in->unique, ENOSYS); /* the kernel remembers and stops asking (statx, lseek…) */
  }
}

static void *reader(void *arg) {
  session_t *s = arg;
  char *buf = malloc(REQUEST_BUFFER);
  char *scratch = malloc(DIRECT_MAX);
  if (!buf || !scratch) {
    free(buf);
    free(scratch);
    return NULL;
  }
  struct pollfd fds[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
  while (!atomic_load(&s->stopping)) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents) break;
    ssize_t n = read(s->fd, buf, REQUEST_BUFFER);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ENOENT) continue;
      break; /* ENODEV: unmounted or aborted */
    }
    handle(s, buf, (size_t)n, scratch);
  }
  free(buf);
  free(scratch);
  if (!atomic_load(&s->stopping) && !atomic_exchange(&s->gone_sent, 1)) {
    pending_t *p = calloc(1, sizeof *p);
    if (p) {
      p->s = s;
      p->op = OP_GONE;
      if (napi_call_threadsafe_function(s->tsfn, p, napi_tsfn_nonblocking) != napi_ok) free(p);
    }
  }
  return NULL;
}

/* ---------- INIT ---------- */

static int answer_init(session_t *s) {
  char *buf = malloc(REQUEST_BUFFER);
  if (!buf) return ENOMEM;
  struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
  ssize_t n;
  for (;;) {
    if (poll(&pfd, 1, 10000) == 0) {
      free(buf);
      return ETIMEDOUT;
    }
    n = read(s->fd, buf, REQUEST_BUFFER);
    if (n >= 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  if (n < 0) {
    int e = errno;
    free(buf);
    return e;
  }
  const struct fuse_in_header *in = (const void *)buf;
  const struct fuse_init_in *init = (const void *)(buf + sizeof *in);
  if ((size_t)n < sizeof *in + 16 || in->opcode != FUSE_INIT || init->major != FUSE_KERNEL_VERSION) {
    reply_error(s, in->unique, EPROTO);
    free(buf);
    return EPROTO;
  }
  uint64_t offered = init->flags;
  if ((offered & FUSE_INIT_EXT) && (size_t)n >= sizeof *in + sizeof *init)
    offered |= (uint64_t)init->flags2 << 32;
  uint64_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS | FUSE_PARALLEL_DIROPS |
                  FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT |
                  /* idmapped mounts of it (a node's user namespace); needs default_permissions */
                  FUSE_ALLOW_IDMAP | (s->want_passthrough ? FUSE_PASSTHROUGH : 0);
  uint64_t got = want & offered;
  struct fuse_init_out out = {
      .major = FUSE_KERNEL_VERSION,
      .minor = FUSE_OUR_MINOR,
      .max_readahead = init->max_readahead,
      .flags = (uint32_t)got,
      .max_background = 64,
      .congestion_threshold = 48,
      .max_write = MAX_WRITE,
      .time_gran = 1,
      .max_pages = MAX_PAGES,
      .flags2 = (uint32_t)(got >> 32),
      /* 1: an overlay (the node's writable upper) still stacks on top (depth 2 is the limit). */
      .max_stack_depth = (got & FUSE_PASSTHROUGH) ? 1 : 0,
  };
  s->proto_minor = init->minor < FUSE_OUR_MINOR ? init->minor : FUSE_OUR_MINOR;
  s->flags = got;
  s->max_readahead = init->max_readahead;
  s->passthrough = (got & FUSE_PASSTHROUGH) != 0;
  reply_bytes(s, in->unique, &out, init->minor < 23 ? 24 : sizeof out);
  free(buf);
  return 0;
}

/* ---------- mount / unmount (async work) ---------- */

static void set_error(session_t *s, int error, const char *what) {
  s->error = error;
  snprintf(s->error_message, sizeof s->error_message, "%s: %s", what, strerror(error));
}

static void start_threads(session_t *s) {
  for (int i = 0; i < s->nthreads; i++) {
    int e = pthread_create(&s->threads[i], NULL, reader, s);
    if (e != 0) return set_error(s, e, "pthread_create");
    s->started_threads++;
  }
}

static void mount_execute(napi_env env, void *data) {
  (void)env;
  session_t *s = data;
  s->fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (s->fd < 0) return set_error(s, errno, "open /dev/fuse");
  s->io_fd = memfd_create("thaw-fuse-io", MFD_CLOEXEC);
  if (s->io_fd < 0) return set_error(s, errno, "memfd_create");
  s->wake_fd = eventfd(0, EFD_CLOEXEC);
  if (s->wake_fd < 0) return set_error(s, errno, "eventfd");
  char options[512];
  snprintf(options, sizeof options, "fd=%d,rootmode=40000,user_id=0,group_id=0%s", s->fd,
           s->mount_options);
  if (mount(s->source, s->dir, s->fstype, MS_NOSUID | MS_NODEV | MS_RDONLY, options) != 0)
    return set_error(s, errno, "mount");
  int e = answer_init(s);
  if (e) {
    umount2(s->dir, MNT_DETACH);
    return set_error(s, e, "FUSE_INIT");
  }
  start_threads(s);
}

/*
 * A session whose connection an earlier server set up (its descriptors kept by thaw-fuse-keeper):
 * no mount and no INIT, the negotiated values come from the caller. Requests that server read and
 * never answered are asked for again (FUSE_NOTIFY_RESEND, Linux 6.9+; on older kernels they stay
 * unanswered).
 */
static void adopt_execute(napi_env env, void *data) {
  (void)env;
  session_t *s = data;
  if (s->error) return;
  int e = io_map_existing(s);
  if (e) return set_error(s, e, "mmap of the io table");
  s->wake_fd = eventfd(0, EFD_CLOEXEC);
  if (s->wake_fd < 0) return set_error(s, errno, "eventfd");
  start_threads(s);
  if (s->error) return;
  struct fuse_out_header resend = {.len = sizeof resend, .error = FUSE_NOTIFY_RESEND};
  if (write(s->fd, &resend, sizeof resend) < 0) s->resend_error = errno;
}

static void stop_threads(session_t *s) {
  atomic_store(&s->stopping, 1);
  uint64_t one = 1;
  if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof one) < 0) {
  }
  for (int i = 0; i < s->started_threads; i++) pthread_join(s->threads[i], NULL);
  s->started_threads = 0;
  atomic_store(&s->closed, 1);
  if (s->fd >= 0) close(s->fd); /* the last descriptor: the kernel aborts the connection */
  if (s->wake_fd >= 0) close(s->wake_fd);
  s->fd = s->wake_fd = -1;
}

static void unmount_execute(napi_env env, void *data) {
  (void)env;
  session_t *s = data;
  atomic_store(&s->stopping, 1); /* the readers' ENODEV from here on is ours, not news */
  if (umount2(s->dir, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    set_error(s, errno, "umount2");
  stop_threads(s);
}

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value error_value(napi_env env, session_t *s) {
  napi_value msg, err, code;
  napi_create_string_utf8(env, s->error_message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &err);
  napi_create_int32(env, s->error, &code);
  napi_set_named_property(env, err, "errno", code);
  return err;
}

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

static napi_value session_info(napi_env env, session_t *s) {
  napi_value obj, b;
  napi_create_object(env, &obj);
  set_number(env, obj, "protocolMinor", s->proto_minor);
  set_number(env, obj, "maxPages", (s->flags & FUSE_MAX_PAGES) ? MAX_PAGES : 32);
  set_number(env, obj, "maxReadahead", s->max_readahead);
  napi_get_boolean(env, s->passthrough, &b);
  napi_set_named_property(env, obj, "passthrough", b);
  napi_get_boolean(env, (s->flags & FUSE_DO_READDIRPLUS) != 0, &b);
  napi_set_named_property(env, obj, "readdirplus", b);
  set_number(env, obj, "flags", (double)s->flags);
  set_number(env, obj, "resendError", s->resend_error);
  return obj;
}

static void mount_complete(napi_env env, napi_status status, void *data) {
  session_t *s = data;
  napi_delete_async_work(env, s->work);
  if (status == napi_ok && s->error == 0) {
    napi_value handle, result;
    napi_get_reference_value(env, s->self, &handle);
    napi_create_object(env, &result);
    napi_set_named_property(env, result, "handle", handle);
    napi_set_named_property(env, result, "info", session_info(env, s));
    napi_resolve_deferred(env, s->deferred, result);
    return;
  }
  napi_value err = error_value(env, s);
  stop_threads(s);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  napi_reject_deferred(env, s->deferred, err);
}

static void unmount_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  session_t *s = data;
  napi_delete_async_work(env, s->work);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (s->error) napi_reject_deferred(env, s->deferred, error_value(env, s));
  else napi_resolve_deferred(env, s->deferred, undefined);
}

/* ---------- JS thread: requests to the handler ---------- */

/*
 * A request's unique crosses to JS as a double. The kernel counts them in steps of 2 (the low bit
 * marks interrupts, which are never answered); a resent request has bit 63 set, which a double
 * cannot hold next to a counter: it travels as the low bit instead.
 */
static double js_unique(uint64_t unique) {
  return (double)((unique & ~FUSE_UNIQUE_RESEND) | ((unique & FUSE_UNIQUE_RESEND) ? 1 : 0));
}

static uint64_t kernel_unique(double js) {
  uint64_t u = (uint64_t)js;
  return (u & 1) ? ((u & ~1ULL) | FUSE_UNIQUE_RESEND) : u;
}

/*
 * handler(handle, op, unique, nodeid, a, b, c, name): the session's handle comes with every
 * request, so a request that arrives before mount()'s promise has settled can be answered too.
 */
static void call_js(napi_env env, napi_value handler, void *context, void *data) {
  session_t *s = context;
  pending_t *p = data;
  if (env == NULL) {
    free(p);
    return;
  }
  napi_value argv[8], undefined;
  napi_get_undefined(env, &undefined);
  napi_get_reference_value(env, s->self, &argv[0]);
  napi_create_uint32(env, p->op, &argv[1]);
  napi_create_double(env, js_unique(p->unique), &argv[2]);
  napi_create_double(env, (double)p->nodeid, &argv[3]);
  napi_create_double(env, (double)p->a, &argv[4]);
  napi_create_double(env, (double)p->b, &argv[5]);
  napi_create_uint32(env, p->c, &argv[6]);
  if (p->op == OP_LOOKUP || p->op == OP_GETXATTR)
    napi_create_string_utf8(env, p->name, p->namelen, &argv[7]);
  else argv[7] = undefined;
  napi_call_function(env, undefined, handler, 8, argv, NULL);
  free(p);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)data;
  session_t *s = hint;
  /* the reader threads are gone: the direct-read tables can go */
  for (uint32_t i = 0; i < s->ndblobs; i++) {
    struct direct_blob *b = &s->dblobs[i];
    if (b->present_ref) napi_delete_reference(env, b->present_ref);
    if (b->fd >= 0) close(b->fd);
    free(b->uoff);
    free(b->ulen);
  }
  free(s->dblobs);
  free(s->dinodes);
  s->dblobs = NULL;
  s->dinodes = NULL;
  s->ndblobs = 0;
  s->dinodes_len = 0;
  if (s->self) {
    napi_delete_reference(env, s->self);
    s->self = NULL;
  }
}

static void session_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  session_t *s = data;
  free(s->dir);
  free(s->source);
  free(s->fstype);
  free(s->mount_options);
  if (s->io) munmap(s->io, s->io_len * sizeof *s->io);
  if (s->io_fd >= 0) close(s->io_fd);
  pthread_mutex_destroy(&s->io_lock);
  pthread_mutex_destroy(&s->direct_lock);
  free(s);
}

/* ---------- exported functions ---------- */

static char *string_arg(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *out = malloc(len + 1);
  if (out) napi_get_value_string_utf8(env, v, out, len + 1, &len);
  return out;
}

static double number_prop(napi_env env, napi_value obj, const char *key, double fallback) {
  napi_value v;
  double d;
  bool has;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return fallback;
  napi_get_named_property(env, obj, key, &v);
  return napi_get_value_double(env, v, &d) == napi_ok ? d : fallback;
}

/* A session from (dir, name, options, handler), its promise started; NULL after a throw. */
static session_t *session_new(napi_env env, napi_callback_info info, napi_value *promise,
                              napi_value *options) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) {
    throw_error(env, "(dir, name, options, handler)");
    return NULL;
  }
  session_t *s = calloc(1, sizeof *s);
  if (!s) {
    throw_error(env, "out of memory");
    return NULL;
  }
  s->fd = s->wake_fd = s->io_fd = -1;
  pthread_mutex_init(&s->io_lock, NULL);
  pthread_mutex_init(&s->direct_lock, NULL);
  s->dir = string_arg(env, argv[0]);
  s->source = string_arg(env, argv[1]);
  s->fstype = strdup("fuse.thaw");
  int threads = (int)number_prop(env, argv[2], "threads", 2);
  s->nthreads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
  s->entry_valid = (uint64_t)number_prop(env, argv[2], "entryTimeout", 3600);
  s->attr_valid = (uint64_t)number_prop(env, argv[2], "attrTimeout", 3600);
  s->negative_valid = (uint64_t)number_prop(env, argv[2], "negativeTimeout", 3600);
  s->want_passthrough = number_prop(env, argv[2], "passthrough", 1) != 0;
  int allow_other = number_prop(env, argv[2], "allowOther", 1) != 0;
  char opts[128];
  snprintf(opts, sizeof opts, "%s,default_permissions", allow_other ? ",allow_other" : "");
  s->mount_options = strdup(opts);
  if (!s->dir || !s->source || !s->fstype || !s->mount_options) {
    session_finalize(env, s, NULL);
    throw_error(env, "out of memory");
    return NULL;
  }
  napi_value handle, resource;
  napi_create_external(env, s, session_finalize, NULL, &handle);
  napi_create_reference(env, handle, 1, &s->self); /* alive until unmounted */
  napi_create_string_utf8(env, "thaw-fuse", NAPI_AUTO_LENGTH, &resource);
  napi_create_threadsafe_function(env, argv[3], NULL, resource, 0, 1, s, tsfn_finalize, s, call_js,
                                  &s->tsfn);
  napi_create_promise(env, &s->deferred, promise);
  *options = argv[2];
  return s;
}

static void queue(napi_env env, session_t *s, napi_async_execute_callback execute) {
  napi_value resource;
  napi_create_string_utf8(env, "thaw-fuse", NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, execute, mount_complete, s, &s->work);
  napi_queue_async_work(env, s->work);
}

/* mount(dir, name, options, handler) → Promise<{ handle, info }> */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value promise, options;
  session_t *s = session_new(env, info, &promise, &options);
  if (!s) return NULL;
  queue(env, s, mount_execute);
  return promise;
}

/*
 * adopt(dir, name, options, handler) → Promise<{ handle, info }>: serves a connection set up by an
 * earlier server. options: fd and ioFd (owned by the session from here on), and the values INIT
 * negotiated then (protocolMinor, flags, maxReadahead), as its info reported them.
 */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  napi_value promise, options;
  session_t *s = session_new(env, info, &promise, &options);
  if (!s) return NULL;
  s->fd = (int)number_prop(env, options, "fd", -1);
  s->io_fd = (int)number_prop(env, options, "ioFd", -1);
  s->proto_minor = (uint32_t)number_prop(env, options, "protocolMinor", 0);
  s->flags = (uint64_t)number_prop(env, options, "flags", 0);
  s->max_readahead = (uint32_t)number_prop(env, options, "maxReadahead", 0);
  s->passthrough = (s->flags & FUSE_PASSTHROUGH) != 0;
  if (s->fd < 0 || s->io_fd < 0) set_error(s, EBADF, "adopt: fd and ioFd are needed");
  queue(env, s, adopt_execute);
  return promise;
}

/* descriptors(handle) → [fd, ioFd]: the connection and the io table, to hand to a keeper. */
static napi_value js_descriptors(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok || !p)
    return throw_error(env, "descriptors(handle)");
  session_t *s = p;
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, s->fd, &v);
  napi_set_element(env, out, 0, v);
  napi_create_int32(env, s->io_fd, &v);
  napi_set_element(env, out, 1, v);
  return out;
}

static session_t *session_arg(napi_env env, napi_value v) {
  void *p = NULL;
  napi_get_value_external(env, v, &p);
  return p;
}

/* unmount(handle) → Promise<void>; idempotent per handle is the caller's job (fuse-session.ts). */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, resource;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  session_t *s = argc ? session_arg(env, argv[0]) : NULL;
  if (!s) return throw_error(env, "unmount(handle)");
  s->error = 0;
  napi_create_string_utf8(env, "thaw-fuse-unmount", NAPI_AUTO_LENGTH, &resource);
  napi_create_promise(env, &s->deferred, &promise);
  napi_create_async_work(env, NULL, resource, unmount_execute, unmount_complete, s, &s->work);
  napi_queue_async_work(env, s->work);
  return promise;
}

#define ARGS(n)                                                                                    \
  size_t argc = n;                                                                                 \
  napi_value argv[n];                                                                              \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);                                            \
  if (argc < n) return throw_error(env, "missing arguments");                                      \
  session_t *s = session_arg(env, argv[0]);                                                        \
  if (!s) return throw_error(env, "not a FUSE session");                                           \
  double unique_d;                                                                                 \
  napi_get_value_double(env, argv[1], &unique_d);                                                  \
  uint64_t unique = kernel_unique(unique_d);

static int64_t int_arg(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}

/*
 * Attributes cross from JS as 10 numbers in a Float64Array:
 * [nodeid, ino, size, mode, nlink, uid, gid, rdev, mtime seconds, mtime nanoseconds].
 */
#define ATTR_FIELDS 10

static void fill_attr(struct fuse_attr *a, const double *f) {
  memset(a, 0, sizeof *a);
  a->ino = (uint64_t)f[1];
  a->size = (uint64_t)f[2];
  a->blocks = (a->size + 511) / 512;
  a->mode = (uint32_t)f[3];
  a->nlink = (uint32_t)f[4];
  a->uid = (uint32_t)f[5];
  a->gid = (uint32_t)f[6];
  a->rdev = (uint32_t)f[7];
  a->atime = a->mtime = a->ctime = (uint64_t)f[8];
  a->atimensec = a->mtimensec = a->ctimensec = (uint32_t)f[9];
  a->blksize = 4096;
}

static void fill_entry(session_t *s, struct fuse_entry_out *e, const double *f) {
  memset(e, 0, sizeof *e);
  e->nodeid = (uint64_t)f[0];
  if (e->nodeid == 0) {
    e->entry_valid = s->negative_valid;
    return;
  }
  e->entry_valid = s->entry_valid;
  e->attr_valid = s->attr_valid;
  fill_attr(&e->attr, f);
}

static const double *attrs_arg(napi_env env, napi_value v, size_t *count) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array)
    return NULL;
  *count = length / ATTR_FIELDS;
  return data;
}

/* replyError(handle, unique, errno) */
static napi_value js_reply_error(napi_env env, napi_callback_info info) {
  ARGS(3)
  reply_error(s, unique, (int)int_arg(env, argv[2]));
  return NULL;
}

/* replyEntry(handle, unique, attrs): a LOOKUP; nodeid 0 caches a negative entry. */
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  ARGS(3)
  size_t n;
  const double *f = attrs_arg(env, argv[2], &n);
  if (!f || n < 1) return throw_error(env, "attrs must be a Float64Array of 10");
  struct fuse_entry_out e;
  fill_entry(s, &e, f);
  reply_bytes(s, unique, &e, sizeof e);
  return NULL;
}

/* replyAttr(handle, unique, attrs): a GETATTR. */
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  ARGS(3)
  size_t n;
  const double *f = attrs_arg(env, argv[2], &n);
  if (!f || n < 1) return throw_error(env, "attrs must be a Float64Array of 10");
  struct fuse_attr_out out = {.attr_valid = s->attr_valid};
  fill_attr(&out.attr, f);
  reply_bytes(s, unique, &out, sizeof out);
  return NULL;
}

/* replyData(handle, unique, buffer, length): READ, READLINK, GETXATTR and LISTXATTR values. */
static napi_value js_reply_data(napi_env env, napi_callback_info info) {
  ARGS(4)
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok)
    return throw_error(env, "data must be a Buffer");
  int64_t n = int_arg(env, argv[3]);
  if (n < 0 || (size_t)n > len) return throw_error(env, "length out of the buffer");
  reply_bytes(s, unique, data, (size_t)n);
  return NULL;
}

/* replyXattrSize(handle, unique, size): GETXATTR/LISTXATTR asked with size 0. */
static napi_value js_reply_xattr_size(napi_env env, napi_callback_info info) {
  ARGS(3)
  struct fuse_getxattr_out out = {.size = (uint32_t)int_arg(env, argv[2])};
  reply_bytes(s, unique, &out, sizeof out);
  return NULL;
}

/* replyStatfs(handle, unique, blocks, files) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  ARGS(4)
  struct fuse_kstatfs st = {.blocks = (uint64_t)int_arg(env, argv[2]),
                            .files = (uint64_t)int_arg(env, argv[3]),
                            .bsize = 4096,
                            .frsize = 4096,
                            .namelen = 255};
  reply_bytes(s, unique, &st, sizeof st);
  return NULL;
}

/*
 * replyOpen(handle, unique, nodeid, backingFd) → 1 when the open passes through, 0 when it is in
 * page-cache mode, -errno when registering backingFd failed (the open is then in page-cache mode).
 * backingFd < 0 asks for page-cache mode (still passthrough if the inode is in it already).
 */
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  ARGS(4)
  uint64_t nodeid = (uint64_t)int_arg(env, argv[2]);
  int backing_fd = (int)int_arg(env, argv[3]);
  struct fuse_open_out out = {.fh = FH_CACHED, .open_flags = FOPEN_KEEP_CACHE | FOPEN_NOFLUSH};
  int failure = 0;
  pthread_mutex_lock(&s->io_lock);
  struct inode_io *io = io_of(s, nodeid);
  if (io && io->passthrough_opens > 0) {
    out.fh = FH_PASSTHROUGH;
  } else if (io && backing_fd >= 0 && s->passthrough && io->cached_opens == 0) {
    struct fuse_backing_map map = {.fd = backing_fd};
    int id = ioctl(s->fd, FUSE_DEV_IOC_BACKING_OPEN, &map);
    if (id > 0) {
      io->backing_id = id;
      out.fh = FH_PASSTHROUGH;
    } else {
      failure = errno;
    }
  }
  if (io && out.fh == FH_PASSTHROUGH) {
    io->passthrough_opens++;
    out.open_flags = FOPEN_PASSTHROUGH | FOPEN_NOFLUSH;
    out.backing_id = io->backing_id;
  } else if (io) {
    io->cached_opens++;
  }
  pthread_mutex_unlock(&s->io_lock);
  reply_bytes(s, unique, &out, sizeof out);
  napi_value result;
  napi_create_int32(env, failure ? -failure : out.fh == FH_PASSTHROUGH, &result);
  return result;
}

static size_t dirent_size(int plus, size_t namelen) {
  return FUSE_DIRENT_ALIGN((plus ? sizeof(struct fuse_entry_out) : 0) +
                           sizeof(struct fuse_dirent) + namelen);
}

/*
 * replyDir(handle, unique, plus, firstOffset, names, attrs, size) → entries written. Entry i gets
 * offset firstOffset + i + 1 (where the next READDIR continues); as many as fit in `size`.
 */
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  ARGS(7)
  bool plus;
  napi_get_value_bool(env, argv[2], &plus);
  int64_t first = int_arg(env, argv[3]);
  uint32_t count;
  napi_get_array_length(env, argv[4], &count);
  size_t nattrs;
  const double *attrs = attrs_arg(env, argv[5], &nattrs);
  if (!attrs || nattrs < count) return throw_error(env, "one attrs record per name");
  size_t size = (size_t)int_arg(env, argv[6]);
  char *out = calloc(1, size ? size : 1);
  if (!out) return throw_error(env, "out of memory");
  size_t used = 0;
  uint32_t written = 0;
  char name[1024];
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    size_t namelen;
    napi_get_element(env, argv[4], i, &v);
    if (napi_get_value_string_utf8(env, v, name, sizeof name, &namelen) != napi_ok) break;
    size_t need = dirent_size(plus, namelen);
    if (used + need > size) break;
    const double *f = attrs + (size_t)i * ATTR_FIELDS;
    struct fuse_dirent *d;
    if (plus) {
      struct fuse_direntplus *dp = (void *)(out + used);
      fill_entry(s, &dp->entry_out, f);
      d = &dp->dirent;
    } else {
      d = (void *)(out + used);
    }
    d->ino = (uint64_t)f[1];
    d->off = (uint64_t)(first + i + 1);
    d->namelen = (uint32_t)namelen;
    d->type = ((uint32_t)f[3] & 0170000) >> 12;
    memcpy(d->name, name, namelen);
    used += need;
    written++;
  }
  reply_bytes(s, unique, out, used);
  free(out);
  napi_value result;
  napi_create_uint32(env, written, &result);
  return result;
}

/*
 * directBlob(handle, index, fd, uoffs, ulens, present): blob `index` of the image for direct reads:
 * its cache file (duplicated), its frames' decoded offsets and lengths (Float64Arrays, ascending),
 * and a Uint8Array of one byte per frame that JS sets to 1 once the frame is readable (and never
 * clears while the session lives). Once per blob and session.
 */
static napi_value js_direct_blob(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  session_t *s = argc == 6 ? session_arg(env, argv[0]) : NULL;
  if (!s) return throw_error(env, "directBlob(handle, index, fd, uoffs, ulens, present)");
  uint32_t index = (uint32_t)int_arg(env, argv[1]);
  int fd = (int)int_arg(env, argv[2]);
  napi_typedarray_type t1, t2, t3;
  size_t n1, n2, n3;
  void *d1, *d2, *d3;
  if (napi_get_typedarray_info(env, argv[3], &t1, &n1, &d1, NULL, NULL) != napi_ok ||
      napi_get_typedarray_info(env, argv[4], &t2, &n2, &d2, NULL, NULL) != napi_ok ||
      napi_get_typedarray_info(env, argv[5], &t3, &n3, &d3, NULL, NULL) != napi_ok ||
      t1 != napi_float64_array || t2 != napi_float64_array || t3 != napi_uint8_array || n1 != n2 ||
      n1 != n3 || index > 1u << 20)
    return throw_error(env, "directBlob: Float64Array uoffs and ulens, Uint8Array present, one each per frame");
  struct direct_blob b = {.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0), .nframes = (uint32_t)n1,
                          .uoff = malloc(n1 * sizeof(uint64_t) + 1),
                          .ulen = malloc(n1 * sizeof(uint64_t) + 1), .present = d3};
  if (b.fd < 0 || !b.uoff || !b.ulen) {
    if (b.fd >= 0) close(b.fd);
    free(b.uoff);
    free(b.ulen);
    return throw_error(env, "directBlob: out of descriptors or memory");
  }
  for (size_t i = 0; i < n1; i++) {
    b.uoff[i] = (uint64_t)((double *)d1)[i];
    b.ulen[i] = (uint64_t)((double *)d2)[i];
  }
  pthread_mutex_lock(&s->direct_lock);
  int taken = index < s->ndblobs && s->dblobs[index].uoff != NULL;
  if (!taken && index >= s->ndblobs) {
    struct direct_blob *grown = realloc(s->dblobs, (index + 1) * sizeof *grown);
    if (grown) {
      for (uint32_t i = s->ndblobs; i <= index; i++) grown[i] = (struct direct_blob){.fd = -1};
      s->dblobs = grown;
      s->ndblobs = index + 1;
    }
  }
  int stored = !taken && index < s->ndblobs;
  if (stored) {
    napi_create_reference(env, argv[5], 1, &b.present_ref);
    s->dblobs[index] = b;
  }
  pthread_mutex_unlock(&s->direct_lock);
  if (stored) return NULL;
  close(b.fd);
  free(b.uoff);
  free(b.ulen);
  /* once per blob: a reader may hold the arrays of the first registration */
  return throw_error(env, taken ? "directBlob: that blob is registered already" : "out of memory");
}

/* directInode(handle, nodeid, blob, base, size): the file's bytes are blob's [base, base + size). */
static napi_value js_direct_inode(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  session_t *s = argc == 5 ? session_arg(env, argv[0]) : NULL;
  if (!s) return throw_error(env, "directInode(handle, nodeid, blob, base, size)");
  uint64_t nodeid = (uint64_t)int_arg(env, argv[1]);
  struct direct_inode d = {.blob = (int32_t)int_arg(env, argv[2]) + 1,
                           .base = (uint64_t)int_arg(env, argv[3]),
                           .size = (uint64_t)int_arg(env, argv[4])};
  pthread_mutex_lock(&s->direct_lock);
  if (nodeid >= s->dinodes_len && nodeid < (1ull << 32)) {
    size_t len = s->dinodes_len ? s->dinodes_len : 1024;
    while (len <= nodeid) len *= 2;
    struct direct_inode *grown = realloc(s->dinodes, len * sizeof *grown);
    if (grown) {
      memset(grown + s->dinodes_len, 0, (len - s->dinodes_len) * sizeof *grown);
      s->dinodes = grown;
      s->dinodes_len = len;
    }
  }
  if (nodeid < s->dinodes_len) s->dinodes[nodeid] = d;
  pthread_mutex_unlock(&s->direct_lock);
  return NULL;
}

/* directReads(handle, on?) → reads answered directly so far; `on` (a boolean) switches them. */
static napi_value js_direct_reads(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  session_t *s = argc >= 1 ? session_arg(env, argv[0]) : NULL;
  if (!s) return throw_error(env, "directReads(handle, on?)");
  bool on;
  if (argc == 2 && napi_get_value_bool(env, argv[1], &on) == napi_ok) atomic_store(&s->direct_on, on);
  napi_create_double(env, (double)atomic_load(&s->direct_reads), &out);
  return out;
}

/* detach(dir) → 0 or errno: umount2(MNT_DETACH), for mounts a dead process left behind. */
static napi_value js_detach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *dir = argc ? string_arg(env, argv[0]) : NULL;
  if (!dir) return throw_error(env, "detach(dir)");
  int e = umount2(dir, MNT_DETACH) == 0 ? 0 : errno;
  free(dir);
  napi_create_int32(env, e, &result);
  return result;
}

/*
 * keeperCall(socketPath, message, fds) → [{ text, fds }]: one request to thaw-fuse-keeper and its
 * answers, up to the one that ends it ("ok", "end" or "error …"). Synchronous: the keeper is a
 * local process that answers at once (and never touches a mount). Throws with errno when it
 * cannot be reached.
 */
static napi_value keeper_throw(napi_env env, int e, const char *what) {
  char text[256];
  snprintf(text, sizeof text, "thaw-fuse-keeper: %s: %s", what, strerror(e));
  napi_value msg, err, code;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &err);
  napi_create_int32(env, e, &code);
  napi_set_named_property(env, err, "errno", code);
  napi_throw(env, err);
  return NULL;
}

static napi_value js_keeper_call(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_error(env, "keeperCall(socketPath, message, fds)");
  char *path = string_arg(env, argv[0]);
  char *text = string_arg(env, argv[1]);
  uint32_t nfds = 0;
  napi_get_array_length(env, argv[2], &nfds);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (!path || !text || strlen(path) >= sizeof addr.sun_path || nfds > KEEPER_MAX_FDS) {
    free(path);
    free(text);
    return throw_error(env, "keeperCall: bad arguments");
  }
  strcpy(addr.sun_path, path);
  free(path);
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct timeval timeout = {.tv_sec = 5};
  if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
      connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int e = errno;
    if (sock >= 0) close(sock);
    free(text);
    return keeper_throw(env, e, "connect");
  }
  int fds[KEEPER_MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    napi_get_element(env, argv[2], i, &v);
    napi_get_value_int32(env, v, &fds[i]);
  }
  ssize_t sent = keeper_send(sock, text, fds, (int)nfds);
  free(text);
  if (sent < 0) {
    int e = errno;
    close(sock);
    return keeper_throw(env, e, "send");
  }
  napi_value answers;
  napi_create_array(env, &answers);
  char *buf = malloc(KEEPER_MAX_MESSAGE + 1);
  if (!buf) {
    close(sock);
    return throw_error(env, "out of memory");
  }
  for (uint32_t count = 0;; count++) {
    int got;
    ssize_t n = keeper_receive(sock, buf, fds, &got);
    if (n <= 0) {
      int e = n < 0 ? errno : ECONNRESET;
      free(buf);
      close(sock);
      return keeper_throw(env, e, "receive");
    }
    napi_value answer, str, fdlist;
    napi_create_object(env, &answer);
    napi_create_string_utf8(env, buf, (size_t)n, &str);
    napi_set_named_property(env, answer, "text", str);
    napi_create_array(env, &fdlist);
    for (int i = 0; i < got; i++) {
      napi_value v;
      napi_create_int32(env, fds[i], &v);
      napi_set_element(env, fdlist, (uint32_t)i, v);
    }
    napi_set_named_property(env, answer, "fds", fdlist);
    napi_set_element(env, answers, count, answer);
    if (strcmp(buf, "ok") == 0 || strcmp(buf, "end") == 0 || strncmp(buf, "error", 5) == 0) break;
  }
  free(buf);
  close(sock);
  return answers;
}

#define EXPORT(name, fn)                                                                           \
  do {                                                                                             \
    napi_value f;                                                                                  \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);                               \
    napi_set_named_property(env, exports, name, f);                                                \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("mount", js_mount);
  EXPORT("adopt", js_adopt);
  EXPORT("descriptors", js_descriptors);
  EXPORT("keeperCall", js_keeper_call);
  EXPORT("unmount", js_unmount);
  EXPORT("detach", js_detach);
  EXPORT("replyError", js_reply_error);
  EXPORT("replyEntry", js_reply_entry);
  EXPORT("replyAttr", js_reply_attr);
  EXPORT("replyData", js_reply_data);
  EXPORT("replyXattrSize", js_reply_xattr_size);
  EXPORT("replyStatfs", js_reply_statfs);
  EXPORT("replyOpen", js_reply_open);
  EXPORT("replyDir", js_reply_dir);
  EXPORT("directBlob", js_direct_blob);
  EXPORT("directInode", js_direct_inode);
  EXPORT("directReads", js_direct_reads);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
