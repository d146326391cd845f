/*
 * thaw-fuse-keeper SOCKET: holds the /dev/fuse descriptors of thaw's mounts, so a mount outlives
 * the process that serves it. A host (or `thaw mount`, or the snapshotter) stores each session's
 * descriptors here when it mounts; if it dies (SIGKILL, a crash), the kernel's connection stays
 * up because this process still holds it: processes inside the mount wait instead of getting
 * ENOTCONN, and the next server takes the descriptors back and answers them (the kernel resends
 * what the dead one had read: FUSE_NOTIFY_RESEND).
 *
 * One keeper per socket path (a lock file next to it), started detached by the first process that
 * needs it, owned by nobody: it exits when it holds nothing and nobody is connected. It never
 * reads or writes a held descriptor; it polls them only for the error that says the connection
 * ended (unmounted and unused), and then closes them.
 *
 * Protocol: SOCK_SEQPACKET, one datagram per message, descriptors as SCM_RIGHTS, only from peers
 * of our own uid.
 *   "store\n<name>\n<state>" + descriptors → "ok"      (replaces an entry of that name)
 *   "drop\n<name>"                         → "ok"
 *   "list"                                 → "entry\n<name>\n<state>" + descriptors, …, "end"
 *   "ping"                                 → "ok"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keeper_wire.h"

#define MAX_ENTRIES 4096
#define MAX_CLIENTS 64
#define IDLE_EXIT_SECONDS 60

struct entry {
  char *name;
  char *state;
  int fds[KEEPER_MAX_FDS];
  int nfds;
};

static struct entry entries[MAX_ENTRIES];
static int nentries;
static int clients[MAX_CLIENTS];
static int nclients;
static char message[KEEPER_MAX_MESSAGE + 1];

static void drop_entry(int i) {
  for (int j = 0; j < entries[i].nfds; j++) close(entries[i].fds[j]);
  free(entries[i].name);
  free(entries[i].state);
  entries[i] = entries[--nentries];
}

static int find_entry(const char *name) {
  for (int i = 0; i < nentries; i++)
    if (strcmp(entries[i].name, name) == 0) return i;
  return -1;
}

/* Answers one message; false when the client is gone. */
static int serve_client(int fd) {
  int fds[KEEPER_MAX_FDS], nfds;
  if (keeper_receive(fd, message, fds, &nfds) <= 0) return 0;
  char *name = strchr(message, '\n');
  if (name) *name++ = 0;
  char *state = name ? strchr(name, '\n') : NULL;
  if (state) *state++ = 0;
  if (strcmp(message, "store") == 0 && name && state && nfds > 0) {
    int i = find_entry(name);
    if (i >= 0) drop_entry(i);
    if (nentries == MAX_ENTRIES) {
      for (int j = 0; j < nfds; j++) close(fds[j]);
      keeper_send(fd, "error too many entries", NULL, 0);
      return 1;
    }
    struct entry *e = &entries[nentries++];
    e->name = strdup(name);
    e->state = strdup(state);
    memcpy(e->fds, fds, sizeof(int) * nfds);
    e->nfds = nfds;
    keeper_send(fd, "ok", NULL, 0);
    return 1;
  }
  for (int j = 0; j < nfds; j++) close(fds[j]);
  if (strcmp(message, "ping") == 0) {
    keeper_send(fd, "ok", NULL, 0);
  } else if (strcmp(message, "drop") == 0 && name) {
    int i = find_entry(name);
    if (i >= 0) drop_entry(i);
    keeper_send(fd, "ok", NULL, 0);
  } else if (strcmp(message, "list") == 0) {
    for (int i = 0; i < nentries; i++) {
      snprintf(message, sizeof message, "entry\n%s\n%s", entries[i].name, entries[i].state);
      keeper_send(fd, message, entries[i].fds, entries[i].nfds);
    }
    keeper_send(fd, "end", NULL, 0);
  } else {
    keeper_send(fd, "error unknown request", NULL, 0);
  }
  return 1;
}

static int same_user(int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == geteuid();
}

int main(int argc, char **argv) {
  if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path) - 1) {
    fprintf(stderr, "usage: thaw-fuse-keeper SOCKET\n");
    return 2;
  }
  const char *path = argv[1];
  char lock_path[PATH_MAX];
  snprintf(lock_path, sizeof lock_path, "%s.lock", path);
  int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) return 0; /* another keeper runs */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  setsid();
  if (chdir("/") != 0) return 1;
  unlink(path); /* a socket left by a keeper that died; the lock says none runs */
  int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, path);
  mode_t old = umask(0077);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 16) != 0) {
    perror("thaw-fuse-keeper");
    return 1;
  }
  umask(old);
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
  int held_any = 0;
  time_t idle_since = time(NULL);
  static struct pollfd fds[1 + MAX_CLIENTS + MAX_ENTRIES];
  for (;;) {
    int n = 0;
    fds[n++] = (struct pollfd){.fd = listener, .events = POLLIN};
    for (int i = 0; i < nclients; i++) fds[n++] = (struct pollfd){.fd = clients[i], .events = POLLIN};
    /* events 0: only POLLERR, which /dev/fuse reports once its connection ended */
    for (int i = 0; i < nentries; i++) fds[n++] = (struct pollfd){.fd = entries[i].fds[0]};
    if (poll(fds, n, 1000) < 0 && errno != EINTR) return 1;
    for (int i = nentries - 1; i >= 0; i--)
      if (fds[1 + nclients + i].revents & (POLLERR | POLLHUP | POLLNVAL)) drop_entry(i);
    for (int i = nclients - 1; i >= 0; i--) {
      if (!fds[1 + i].revents) continue;
      if (!(fds[1 + i].revents & POLLIN) || !serve_client(clients[i])) {
        close(clients[i]);
        clients[i] = clients[--nclients];
      }
    }
    if (fds[0].revents & POLLIN) {
      int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0 && (nclients == MAX_CLIENTS || !same_user(c))) close(c);
      else if (c >= 0) clients[nclients++] = c;
    }
    if (nentries > 0) held_any = 1;
    if (nentries > 0 || nclients > 0) idle_since = time(NULL);
    else if (held_any || time(NULL) - idle_since >= IDLE_EXIT_SECONDS) break;
  }
  unlink(path);
  return 0;
}
