/*
 * The keeper's wire, shared by thaw-fuse-keeper (thaw_fuse_keeper.c) and its client in the addon
 * (thaw_fuse.c keeperCall): SOCK_SEQPACKET datagrams of text, each with up to KEEPER_MAX_FDS
 * descriptors as SCM_RIGHTS.
 */
#ifndef THAW_KEEPER_WIRE_H
#define THAW_KEEPER_WIRE_H

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define KEEPER_MAX_FDS 4
#define KEEPER_MAX_MESSAGE 65536

union keeper_control {
  char buf[CMSG_SPACE(sizeof(int) * KEEPER_MAX_FDS)];
  struct cmsghdr align;
};

/* Sends `text` with `nfds` (at most KEEPER_MAX_FDS) descriptors; sendmsg's result. */
static inline ssize_t keeper_send(int sock, const char *text, const int *fds, int nfds) {
  union keeper_control control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t sent;
  while ((sent = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return sent;
}

/*
 * Receives one datagram into `buf` (KEEPER_MAX_MESSAGE + 1 bytes, NUL-terminated) and its
 * descriptors into `fds` (close-on-exec; past KEEPER_MAX_FDS they are closed). recvmsg's result.
 */
static inline ssize_t keeper_receive(int sock, char *buf, int *fds, int *nfds) {
  union keeper_control control;
  struct iovec iov = {.iov_base = buf, .iov_len = KEEPER_MAX_MESSAGE};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  *nfds = 0;
  ssize_t n;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n < 0) return n;
  buf[n] = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (*nfds < KEEPER_MAX_FDS) fds[(*nfds)++] = fd;
      else close(fd);
    }
  }
  return n;
}

#endif
