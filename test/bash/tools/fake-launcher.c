/*
 * A stand-in for a subverted launcher (test/bash/launcher.bats): takes the
 * one connection on CHAN/launcher.sock as `launcher serve` does, takes the
 * first request, and sends back RECORDS (a file) with each "NONCE" in it
 * replaced by the request's nonce, then ends it.
 *   fake-launcher CHAN RECORDS
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void fail(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s/launcher.sock", argv[1]);
  int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  unlink(a.sun_path);
  if (bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0) fail("listen");
  int c = accept(l, NULL, NULL);
  if (c < 0) fail("accept");
  char byte, cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  if (recvmsg(c, &m, 0) != 1 || CMSG_FIRSTHDR(&m) == NULL) fail("recvmsg");
  int req;
  memcpy(&req, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
  /* The first frame is the run's argv: "--records NONCE" is in it. */
  unsigned char head[5];
  uint32_t len;
  if (recv(req, head, 5, MSG_WAITALL) != 5) fail("recv");
  memcpy(&len, head + 1, 4);
  len = le32toh(len);
  char *args = calloc(1, len + 1);
  if (recv(req, args, len, MSG_WAITALL) != (ssize_t)len) fail("recv");
  const char *nonce = NULL;
  for (char *p = args; p < args + len; p += strlen(p) + 1) {
    if (strcmp(p, "--records") == 0) nonce = p + strlen(p) + 1;
  }
  if (nonce == NULL) fail("nonce");
  FILE *f = fopen(argv[2], "r");
  if (f == NULL) fail(argv[2]);
  char line[4096];
  while (fgets(line, sizeof(line), f) != NULL) {
    char out[8192], *o = out, *s = line, *n;
    while ((n = strstr(s, "NONCE")) != NULL) {
      memcpy(o, s, (size_t)(n - s));
      o += n - s;
      o += sprintf(o, "%s", nonce);
      s = n + 5;
    }
    o += sprintf(o, "%s", s);
    if (write(req, out, (size_t)(o - out)) < 0) fail("write");
  }
  close(req);
  return 0;
}
