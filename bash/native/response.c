/* Agent responses, encoded by the launcher: see response.h. */
#define _GNU_SOURCE
#include "response.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the error line is taken from: the end of stderr (bash: tail -c 4096). */
#define ERR_TAIL 4096

void buf_put(buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) {
      fputs("launcher: out of memory\n", stderr);
      exit(1);
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

/* jq 1.6's jvp_utf8_next: the length of the sequence at s (>= 1) and its code
 * point, -1 when invalid (a lone or misplaced byte, a sequence cut short, an
 * overlong form, a surrogate, beyond U+10FFFF). */
static size_t utf8_next(const unsigned char *s, const unsigned char *end, long *cp) {
  unsigned char c = s[0];
  size_t len;
  long v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c < 0xC2 || c > 0xF4) { /* a continuation byte, C0/C1, F5-FF */
    *cp = -1;
    return 1;
  }
  len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (s + len > end) {
    *cp = -1;
    return (size_t)(end - s);
  }
  v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) {
      *cp = -1;
      return i;
    }
    v = (v << 6) | (s[i] & 0x3F);
  }
  static const long first[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < first[len] || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) v = -1;
  *cp = v;
  return len;
}

static void json_piece(buf_t *b, const unsigned char *s, const unsigned char *end);

/* jq reads raw input with fgets into 4096 bytes and decodes each piece on
 * its own: a line, or 4095 bytes of a longer one. A sequence cut short at a
 * piece's end swallows the rest of the piece, newline included. */
#define JQ_PIECE 4095

void json_string(buf_t *b, const unsigned char *s, size_t n) {
  const unsigned char *all = s + n;
  buf_put(b, "\"", 1);
  while (s < all) {
    const unsigned char *end = s + (all - s < JQ_PIECE ? (size_t)(all - s) : JQ_PIECE);
    const unsigned char *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl != NULL) end = nl + 1;
    json_piece(b, s, end);
    s = end;
  }
  buf_put(b, "\"", 1);
}

static void json_piece(buf_t *b, const unsigned char *s, const unsigned char *end) {
  char esc[8];
  while (s < end) {
    /* A run that needs nothing: printable ASCII but '"' and '\'. */
    const unsigned char *r = s;
    while (r < end && *r >= 0x20 && *r < 0x7F && *r != '"' && *r != '\\') r++;
    if (r > s) {
      buf_put(b, (const char *)s, (size_t)(r - s));
      s = r;
      continue;
    }
    long cp;
    size_t len = utf8_next(s, end, &cp);
    if (cp == '"' || cp == '\\') {
      esc[0] = '\\';
      esc[1] = (char)cp;
      buf_put(b, esc, 2);
    } else if (cp == '\b') {
      buf_put(b, "\\b", 2);
    } else if (cp == '\t') {
      buf_put(b, "\\t", 2);
    } else if (cp == '\n') {
      buf_put(b, "\\n", 2);
    } else if (cp == '\f') {
      buf_put(b, "\\f", 2);
    } else if (cp == '\r') {
      buf_put(b, "\\r", 2);
    } else if (cp >= 0 && (cp < 0x20 || cp == 0x7F)) {
      snprintf(esc, sizeof(esc), "\\u%04lx", cp);
      buf_put(b, esc, 6);
    } else if (cp < 0) {
      buf_put(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
    } else {
      buf_put(b, (const char *)s, len);
    }
    s += len;
  }
}

/* Up to max bytes of fd from offset off; returns the count read (0 when none). */
static size_t read_part(int fd, off_t off, size_t max, unsigned char *dst) {
  size_t got = 0;
  while (fd >= 0 && got < max) {
    ssize_t r = pread(fd, dst + got, max - got, off + (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  return got;
}

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The last line of stderr's last 4096 bytes that is not blank, NUL bytes
 * dropped (bash: tail -c 4096 | sed '/^[[:space:]]*$/d' | tail -n 1). */
static void error_line(int fd, buf_t *line) {
  struct stat st;
  unsigned char tail[ERR_TAIL];
  if (fstat(fd, &st) != 0 || st.st_size <= 0) return;
  off_t off = st.st_size > ERR_TAIL ? st.st_size - ERR_TAIL : 0;
  size_t n = read_part(fd, off, ERR_TAIL, tail);
  size_t end = n;
  while (end > 0) {
    size_t start = end;
    while (start > 0 && tail[start - 1] != '\n') start--;
    int blank = 1;
    for (size_t i = start; i < end; i++) {
      if (!is_space(tail[i])) blank = 0;
    }
    if (!blank) {
      for (size_t i = start; i < end; i++) {
        if (tail[i] != '\0') buf_put(line, (const char *)&tail[i], 1);
      }
      return;
    }
    end = start > 0 ? start - 1 : 0;
  }
}

const char *response_status(const char *head, size_t len) {
  const char *p = memmem(head, len < 200 ? len : 200, ",\"status\":\"", 11);
  if (len < 18 || strncmp(head, "{\"agentId\":\"agent-", 18) != 0 || p == NULL) return NULL;
  p += 11;
  size_t rest = len - (size_t)(p - head);
  if (rest >= 10 && strncmp(p, "completed\"", 10) == 0) return "completed";
  if (rest >= 7 && strncmp(p, "failed\"", 7) == 0) return "failed";
  return NULL;
}

/* The status of the response already at path (its first line), NULL when unreadable. */
static const char *status_on_disk(const char *path) {
  char head[256];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  ssize_t n = read(fd, head, sizeof(head) - 1);
  close(fd);
  if (n <= 0) return NULL;
  head[n] = '\0';
  return response_status(head, (size_t)n);
}

void response_build(const response_cfg_t *cfg, long index, int out, int err, int rc, int attempts,
                    long long duration_ms, int timed_out, buf_t *resp) {
  char num[160];
  buf_t line = {0};
  struct stat st;
  long long size = 0;
  snprintf(num, sizeof(num), "{\"agentId\":\"agent-%ld\",\"index\":%ld,\"status\":\"%s\",\"exitCode\":%d,\"attempts\":%d,\"durationMs\":%lld,\"output\":",
           index, index, rc == 0 ? "completed" : "failed", rc, attempts, duration_ms);
  buf_str(resp, num);
  if (out >= 0 && fstat(out, &st) == 0 && st.st_size > 0) size = st.st_size;
  if (size > 0) {
    size_t want = (size_t)(size < cfg->max_output ? size : cfg->max_output);
    unsigned char *data = malloc(want);
    if (data == NULL) {
      fputs("launcher: out of memory\n", stderr);
      exit(1);
    }
    json_string(resp, data, read_part(out, 0, want, data));
    free(data);
  } else {
    buf_str(resp, "\"\"");
  }
  snprintf(num, sizeof(num), ",\"outputBytes\":%lld,\"outputTruncated\":%s,\"error\":", size,
           size > cfg->max_output ? "true" : "false");
  buf_str(resp, num);
  if (rc == 0) {
    buf_str(resp, "null");
  } else {
    buf_t last = {0};
    if (err >= 0) error_line(err, &last);
    if (timed_out) {
      buf_str(&line, "timed out after ");
      buf_str(&line, cfg->timeout_text);
      buf_str(&line, "s");
      if (last.len > 0) {
        buf_str(&line, ": ");
        buf_put(&line, last.data, last.len);
      }
    } else if (last.len > 0) {
      buf_put(&line, last.data, last.len);
    } else {
      snprintf(num, sizeof(num), "exit code %d", rc);
      buf_str(&line, num);
    }
    free(last.data);
    json_string(resp, (const unsigned char *)line.data, line.len);
  }
  buf_str(resp, "}\n");
  free(line.data);
}

const char *response_publish(const char *root, long index, const char *data, size_t len, const char *tag) {
  char dest[4096], tmp[4096];
  const char *status = response_status(data, len);
  if (status == NULL) status = "failed";
  /* Published once: write a temp file, link it in (never over an existing
   * response), drop the temp name. */
  snprintf(dest, sizeof(dest), "%s/responses/agent-%ld.json", root, index);
  snprintf(tmp, sizeof(tmp), "%s/responses/.tmp/agent-%ld.json.%s", root, index, tag);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int ok = fd >= 0;
  for (size_t off = 0; ok && off < len;) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) ok = 0;
    else off += (size_t)w;
  }
  if (fd >= 0 && close(fd) != 0) ok = 0;
  if (!ok) {
    fprintf(stderr, "launcher: cannot write the response of agent-%ld: %s\n", index, strerror(errno));
  } else if (access(dest, F_OK) != 0 && link(tmp, dest) == 0) {
    /* published */
  } else {
    /* A response exists (an earlier run, or a re-dispatched twin): keep the
     * first, drop this one, and still announce the one on disk. */
    fprintf(stderr, "launcher: second response for agent-%ld dropped\n", index);
    const char *existing = status_on_disk(dest);
    if (existing != NULL) status = existing;
  }
  unlink(tmp);
  return status;
}
