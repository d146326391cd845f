/*
 * thaw-userns: the two things a node's user namespace needs that neither Node.js nor mount(8)
 * 2.38 can do (host/sandbox/user-namespace.ts runs it; built by scripts/install.sh).
 *
 *   thaw-userns create <userns-file> <netns-file> <host-uid> <host-gid> <count>
 *     A user namespace mapping ids 0..count-1 to host-uid.. and host-gid.., and a network
 *     namespace owned by it (so the node may mount its own sysfs, and bind low ports there),
 *     both kept by bind mounts on the two files (created, must not exist). A child unshares the
 *     user namespace, this process writes its maps (user_namespaces(7)), the child unshares the
 *     network namespace, and both are bound from /proc/<child>/ns before the child exits.
 *
 *   thaw-userns idmap <userns-file> <source> <target>
 *     An idmapped bind mount of <source> at <target> (mount_setattr(2) MOUNT_ATTR_IDMAP): files
 *     owned by id n appear owned by the namespace's host id of n, so a node's mapped root owns
 *     the image's root-owned files. open_tree(OPEN_TREE_CLONE) + mount_setattr + move_mount.
 *
 * Exit status: 0 done; 3 the kernel or the source's filesystem cannot do it (EINVAL, ENOSYS,
 * EOPNOTSUPP: e.g. overlayfs, or a FUSE server that did not offer FUSE_ALLOW_IDMAP); 1 any other
 * failure; 2 usage. The reason is on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what) {
  int e = errno;
  fprintf(stderr, "%s: %s\n", what, strerror(e));
  exit(e == EINVAL || e == ENOSYS || e == EOPNOTSUPP ? 3 : 1);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) fail(path);
  close(fd);
}

static void create_file(const char *path) {
  int fd = open(path, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) fail(path);
  close(fd);
}

static int is_id(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* The child: unshare the user namespace, wait for its maps, unshare the network one, wait to
 * be bound, exit. One byte on each pipe per step; a closed pipe means the parent is gone. */
static void child(int from_parent, int to_parent) {
  char c = 0;
  if (unshare(CLONE_NEWUSER) != 0) fail("unshare(CLONE_NEWUSER)");
  if (write(to_parent, &c, 1) != 1 || read(from_parent, &c, 1) != 1) _exit(1);
  if (unshare(CLONE_NEWNET) != 0) fail("unshare(CLONE_NEWNET)");
  if (write(to_parent, &c, 1) != 1) _exit(1);
  read(from_parent, &c, 1);
  _exit(0);
}

static int create(char **a) {
  const char *userns_file = a[0], *netns_file = a[1];
  if (!is_id(a[2]) || !is_id(a[3]) || !is_id(a[4])) {
    fprintf(stderr, "ids and count must be numbers\n");
    return 2;
  }
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) fail("pipe2");
  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    close(down[1]);
    close(up[0]);
    child(down[0], up[1]);
  }
  close(down[0]);
  close(up[1]);
  char c = 0, path[64], map[96];
  if (read(up[0], &c, 1) != 1) goto child_failed;
  snprintf(map, sizeof map, "0 %s %s\n", a[2], a[4]);
  snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
  write_file(path, map);
  snprintf(map, sizeof map, "0 %s %s\n", a[3], a[4]);
  snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
  write_file(path, map);
  if (write(down[1], &c, 1) != 1 || read(up[0], &c, 1) != 1) goto child_failed;
  create_file(userns_file);
  create_file(netns_file);
  snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
  if (mount(path, userns_file, NULL, MS_BIND, NULL) != 0) fail("bind the user namespace");
  snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
  if (mount(path, netns_file, NULL, MS_BIND, NULL) != 0) fail("bind the network namespace");
  close(down[1]);
  waitpid(pid, NULL, 0);
  return 0;
child_failed:
  waitpid(pid, NULL, 0); /* the child printed its reason */
  return 1;
}

static int idmap(char **a) {
  int userns = open(a[0], O_RDONLY | O_CLOEXEC);
  if (userns < 0) fail(a[0]);
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, a[1], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) fail("open_tree");
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (__u64)userns};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
    fail("mount_setattr(MOUNT_ATTR_IDMAP)");
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, a[2], MOVE_MOUNT_F_EMPTY_PATH) != 0)
    fail("move_mount");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 7 && strcmp(argv[1], "create") == 0) return create(argv + 2);
  if (argc == 5 && strcmp(argv[1], "idmap") == 0) return idmap(argv + 2);
  fprintf(stderr,
          "usage: thaw-userns create <userns-file> <netns-file> <host-uid> <host-gid> <count>\n"
          "       thaw-userns idmap <userns-file> <source> <target>\n");
  return 2;
}
