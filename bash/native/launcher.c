/*
 * The agent launcher (docs/v2-engine.md "Who runs an agent"): the one program
 * that starts agent attempts and turns their exit, stdout and stderr into
 * responses (response.c), for V2 and V1. Static, it needs nothing from the
 * image it runs in (no shell, no libc).
 *
 *   launcher serve CHAN   the agent side: runs in the agent container (or as a
 *                         local process for `cfn run`), takes the requests the
 *                         coordinator puts in CHAN/new/ and runs their agents.
 *   launcher relay ...    the coordinator side: puts one request in
 *                         $CFN_LAUNCHER_DIR, validates what the launcher sends
 *                         back, publishes the responses in ROOT/responses/ and
 *                         reports "W INDEX completed|failed" on stdout.
 *   launcher spawn ...    runs agents here and now (what serve runs per request).
 *
 * The channel, on the pod's memory-backed tmpfs: a request is a directory
 * CHAN/new/<id> (argv, env, queue, objective.txt, tasks/<i>, task-env/<i>, the
 * FIFO `records`) that the launcher claims by renaming it to CHAN/run/<id>.
 * It sends one line per final agent into the FIFO, "NONCE W INDEX RESPONSE";
 * the relay removes the FIFO's name once the launcher's hello ("NONCE H") is
 * in, so nothing else can open it, and quarantines (counts, never publishes)
 * any line without the request's nonce, for an agent it did not ask for or
 * already has, or that is not a response of that agent. The launcher is not
 * dumpable: an agent (its child, the same user) cannot read its memory.
 *
 * Why posix_spawn: a fork copies the page tables and takes a copy-on-write
 * fault on every page either side writes afterwards; posix_spawn shares the
 * address space until exec.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "response.h"

extern char **environ;

/* CFN_TASK_ENV_MAX of lib/common.sh: the largest task passed in CFN_TASK. */
#define TASK_ENV_MAX 131000
#define INDEX_MAX 999999999L
/* What is kept of stderr: its end holds the error line. */
#define ERR_KEEP 65536
#define TICK_US 50000

typedef struct {
  long index;
  int attempts;    /* attempts started */
  int64_t t0;      /* first attempt's start, us */
  int64_t a0;      /* this attempt's start (after its backoff), us */
  pid_t pid;       /* running attempt; 0 while waiting out a backoff */
  int out_fd, err_fd;
  int64_t kill_at; /* TERM sent: KILL at this time */
  int ticks;       /* scans seen running */
} slot_t;

static const char *prog = "launcher";
static const char *root;
static char *const *cmd;
static char *exe;             /* the resolved program, NULL when missing */
static int concurrency, retries;
static int64_t limit_us, kill_after_us = 2000000, slack = 4194304;
static int have_tasks;
static int have_task_env;     /* ROOT/task-env exists: per-agent variables */
static char **envp;           /* base environment + per-attempt slots */
static size_t env_base;       /* entries of envp shared by every attempt */
static char *objective;       /* CFN_TASK=<objective>, NULL when too large */
static char *task_env;        /* buffer for a task's CFN_TASK=... */
static slot_t *run;           /* running attempts (and backoffs), at most concurrency */
static int nrun;
static const char *nonce;     /* --records: responses go to stdout as records */
static unsigned char no_retry[256]; /* --no-retry: exit codes never retried */
static response_cfg_t resp_cfg = {.max_output = 65536, .timeout_text = "0"};
static int stopping;
static int first_attempt = 1; /* --first-attempt: CFN_ATTEMPT of the first attempt (V1 retries itself) */
static char report[1 << 16];
static size_t report_len;

static void die(int code, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(code);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) die(1, "out of memory");
  return p;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A whole write, retried on EINTR and short writes. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

static void flush_reports(void) {
  if (report_len == 0) return;
  if (write_all(STDOUT_FILENO, report, report_len) != 0) die(1, "cannot write reports: %s", strerror(errno));
  report_len = 0;
}

/* A decimal in [min, max], the whole string. */
static int parse_num(const char *s, long long min, long long max, long long *out) {
  char *end;
  if (*s < '0' || *s > '9') return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
  *out = v;
  return 0;
}

/* "2,3": each code 1-255 into no_retry; -1 when malformed. */
static int parse_codes(const char *s) {
  char buf[1024];
  if (strlen(s) >= sizeof(buf)) return -1;
  strcpy(buf, s);
  char *save = NULL;
  int n = 0;
  for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    long long v;
    if (parse_num(tok, 1, 255, &v) != 0) return -1;
    no_retry[v] = 1;
    n++;
  }
  /* "2,,3" or a trailing comma: strtok_r skips empty pieces, the count does not. */
  int commas = 0;
  for (const char *p = s; *p; p++) commas += *p == ',';
  return n > 0 && n == commas + 1 ? 0 : -1;
}

/* Seconds with up to 6 decimals ("2", "0.5") in microseconds; -1 when malformed. */
static int64_t parse_seconds(const char *s) {
  int64_t whole = 0, frac = 0, scale = 100000;
  const char *p = s;
  if (*p < '0' || *p > '9') return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    whole = whole * 10 + (*p - '0');
    if (whole > 100000000) return -1;
  }
  if (*p == '.') {
    for (p++; *p >= '0' && *p <= '9' && scale > 0; p++, scale /= 10) frac += (*p - '0') * scale;
  }
  return *p == '\0' ? whole * 1000000 + frac : -1;
}

/* Reads FD up to max bytes into buf (NUL-terminated), stopping at a NUL byte
 * like bash's read -d '' does; returns the length or -1. *more is set when the
 * file holds more than max bytes before any NUL. */
static ssize_t read_text(int fd, char *buf, size_t max, int *more) {
  size_t got = 0;
  *more = 0;
  while (got <= max) {
    ssize_t r = read(fd, buf + got, max + 1 - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  size_t len = strnlen(buf, got);
  if (len > max) {
    *more = 1;
    len = max;
  }
  buf[len] = '\0';
  return (ssize_t)len;
}

/* A whole file into a malloc'd buffer (NUL-terminated); NULL when unreadable. */
static char *read_all(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, got = 0;
  char *b = xmalloc(cap);
  for (;;) {
    if (got + 1 >= cap) {
      cap *= 2;
      b = realloc(b, cap);
      if (b == NULL) die(1, "out of memory");
    }
    ssize_t r = read(fd, b + got, cap - got - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  b[got] = '\0';
  *len = got;
  return b;
}

/* Writes a whole file (mode 0660 less the umask); -1 on failure. */
static int write_file(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
  if (fd < 0) return -1;
  int rc = write_all(fd, data, len);
  if (close(fd) != 0) rc = -1;
  return rc;
}

/* What `exec CMD` runs: CMD itself when it names a path, else the first
 * executable regular file of that name on PATH (like bash's type -P). */
static char *resolve(const char *name) {
  if (strchr(name, '/') != NULL) return strdup(name);
  const char *path = getenv("PATH");
  if (path == NULL) path = "/usr/local/bin:/usr/bin:/bin";
  size_t nlen = strlen(name);
  for (const char *p = path;; p++) {
    const char *e = strchrnul(p, ':');
    size_t dlen = (size_t)(e - p);
    char *full = xmalloc(dlen + nlen + 3);
    if (dlen == 0) {
      memcpy(full, "./", 2);
      dlen = 2;
    } else {
      memcpy(full, p, dlen);
      full[dlen++] = '/';
    }
    memcpy(full + dlen, name, nlen + 1);
    struct stat st;
    if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0) return full;
    free(full);
    if (*e == '\0') return NULL;
    p = e;
  }
}

/* The environment every attempt shares: ours, without the per-attempt names. */
static void build_env(void) {
  static const char *const own[] = {"AGENT_ID=", "AGENT_INDEX=", "CFN_ATTEMPT=", "CFN_TASK=", "CFN_TASK_FILE="};
  size_t n = 0;
  while (environ[n] != NULL) n++;
  envp = calloc(n + 8, sizeof(char *));
  if (envp == NULL) die(1, "out of memory");
  for (size_t i = 0; i < n; i++) {
    int skip = 0;
    for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++) {
      if (strncmp(environ[i], own[k], strlen(own[k])) == 0) skip = 1;
    }
    if (!skip) envp[env_base++] = environ[i];
  }
}

static void read_objective(const char *path) {
  objective = xmalloc(TASK_ENV_MAX + 16);
  memcpy(objective, "CFN_TASK=", 9);
  int more = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
  /* A missing objective: every attempt fails opening its stdin. */
  if (fd < 0 || read_text(fd, objective + 9, TASK_ENV_MAX, &more) < 0) objective[9] = '\0';
  if (fd >= 0) close(fd);
  if (more) {
    free(objective);
    objective = NULL;
  }
}

static void work_path(char *dst, size_t n, long index, const char *ext) {
  snprintf(dst, n, "%s/work/agent-%ld.%ld.%s", root, index, (long)getpid(), ext);
}

static void close_outputs(slot_t *s) {
  if (s->out_fd >= 0) close(s->out_fd);
  if (s->err_fd >= 0) close(s->err_fd);
  s->out_fd = s->err_fd = -1;
}

/* Agent INDEX's final attempt: its response, published (ROOT/responses) or
 * sent as a record (--records), and its raw files removed. */
static void final_response(long index, int rc, int attempts, long long ms, int timed_out) {
  char out[PATH_MAX], err[PATH_MAX], tag[64];
  buf_t resp = {0};
  work_path(out, sizeof(out), index, "out");
  work_path(err, sizeof(err), index, "err");
  response_build(&resp_cfg, index, out, err, rc, attempts, ms, timed_out, &resp);
  unlink(out);
  unlink(err);
  if (nonce != NULL) {
    char head[96];
    int n = snprintf(head, sizeof(head), "%s W %ld ", nonce, index);
    flush_reports();
    if (write_all(STDOUT_FILENO, head, (size_t)n) != 0 || write_all(STDOUT_FILENO, resp.data, resp.len) != 0)
      die(1, "cannot send the response of agent-%ld: %s", index, strerror(errno));
  } else {
    snprintf(tag, sizeof(tag), "%ld", (long)getpid());
    const char *status = response_publish(root, index, resp.data, resp.len, tag);
    if (sizeof(report) - report_len < 96) flush_reports();
    report_len += (size_t)snprintf(report + report_len, sizeof(report) - report_len, "W %ld %s\n", index, status);
  }
  free(resp.data);
}

/* The attempt of slot s ended with rc (or never started): retry it after its
 * backoff, else report it and free the slot. Returns 1 when the slot is free. */
static int attempt_ended(slot_t *s, int rc, int64_t now) {
  int timed_out = rc != 0 && limit_us > 0 && now - s->a0 >= limit_us;
  close_outputs(s);
  s->kill_at = 0;
  if (stopping) {
    /* Stopped, not final: no answer. Its raw files stay in work/ (spawn), or
     * the relay hears of it and leaves the same trace in the swarm's work/. */
    if (nonce != NULL) {
      char rec[96];
      int n = snprintf(rec, sizeof(rec), "%s I %ld\n", nonce, s->index);
      flush_reports();
      (void)write_all(STDOUT_FILENO, rec, (size_t)n);
    }
    return 1;
  }
  int tried = s->attempts - first_attempt + 1;
  if (rc != 0 && tried <= retries && !(rc < 256 && no_retry[rc])) {
    int shift = tried - 1 < 30 ? tried - 1 : 30;
    s->pid = 0;
    s->a0 = now + ((int64_t)100000 << shift);
    return 0;
  }
  final_response(s->index, rc, s->attempts, (long long)((now - s->t0) / 1000), timed_out);
  return 1;
}

/* A per-task variable name: a shell variable name, never the engine's own. */
static int task_env_name_ok(const char *kv, size_t n) {
  static const char *const engine[] = {"AGENT_ID", "AGENT_INDEX", "OBJECTIVE_ID", "SWARM_ID"};
  if (n == 0 || !(isalpha((unsigned char)kv[0]) || kv[0] == '_')) return 0;
  for (size_t i = 1; i < n; i++) {
    if (!(isalnum((unsigned char)kv[i]) || kv[i] == '_')) return 0;
  }
  if (n >= 4 && strncmp(kv, "CFN_", 4) == 0) return 0;
  for (size_t k = 0; k < sizeof(engine) / sizeof(engine[0]); k++) {
    if (strlen(engine[k]) == n && strncmp(kv, engine[k], n) == 0) return 0;
  }
  return 1;
}

/* The environment of an attempt of agent INDEX with its own variables from
 * ROOT/task-env/INDEX (NAME=VALUE entries, each ended by NUL: data, never
 * evaluated): those first, then the shared ones not named by them, then the
 * attempt's own (base[env_base..]). NULL when the agent has none (*buf NULL) or
 * on a bad entry (reported on err_fd, *bad set). Free *buf and the result. */
static char **task_envp(long index, char **base, int err_fd, char **buf, int *bad) {
  char path[PATH_MAX];
  size_t len;
  *bad = 0;
  snprintf(path, sizeof(path), "%s/task-env/%ld", root, index);
  struct stat st;
  *buf = NULL;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
  *buf = read_all(path, &len);
  if (*buf == NULL) return NULL;
  size_t nvars = 0, nbase = 0;
  for (size_t i = 0; i < len; i++) nvars += (*buf)[i] == '\0';
  while (base[nbase] != NULL) nbase++;
  char **ev = calloc(nvars + nbase + 2, sizeof(char *));
  if (ev == NULL) die(1, "out of memory");
  size_t e = 0;
  for (size_t off = 0; off < len;) {
    char *kv = *buf + off;
    size_t kvlen = strlen(kv);
    char *eq = memchr(kv, '=', kvlen);
    if (eq == NULL || !task_env_name_ok(kv, (size_t)(eq - kv))) {
      dprintf(err_fd, "%s: task-env/%ld: invalid or engine variable name\n", prog, index);
      *bad = 1;
      free(ev);
      return NULL;
    }
    ev[e++] = kv;
    off += kvlen + 1;
  }
  size_t own = e;
  for (size_t i = 0; i < nbase; i++) {
    int shadowed = 0;
    if (i < env_base) {
      const char *eq = strchr(base[i], '=');
      size_t n = eq ? (size_t)(eq - base[i]) : strlen(base[i]);
      for (size_t k = 0; k < own && !shadowed; k++) shadowed = strncmp(ev[k], base[i], n) == 0 && ev[k][n] == '=';
    }
    if (!shadowed) ev[e++] = base[i];
  }
  ev[e] = NULL;
  return ev;
}

/* Opens an attempt's stdout or stderr file; -1 with a message on failure. */
static int open_out(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
  if (fd < 0) fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
  return fd;
}

/* Starts the next attempt of slot s now; returns its exit code when it could
 * not start (the attempt is over), else -1. */
static int launch(slot_t *s) {
  char out[PATH_MAX], err[PATH_MAX], tf[PATH_MAX], id[32], index[32], attempt[32], task_file[PATH_MAX + 16];
  int in_fd = -1, out_fd = -1, err_fd = -1, rc = -1;
  size_t e = env_base;
  pid_t pid = 0;
  s->attempts++;
  s->a0 = now_us();
  s->ticks = 0;
  s->kill_at = 0;
  if (s->attempts == first_attempt) s->t0 = s->a0;
  work_path(out, sizeof(out), s->index, "out");
  work_path(err, sizeof(err), s->index, "err");
  if (have_tasks) {
    snprintf(tf, sizeof(tf), "%s/tasks/%ld", root, s->index);
    in_fd = open(tf, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in_fd >= 0 && (fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode))) {
      close(in_fd);
      in_fd = -1;
    }
  }
  if (in_fd >= 0) {
    int more = 0;
    if (read_text(in_fd, task_env + 9, TASK_ENV_MAX, &more) < 0) more = 1;
    if (!more) envp[e++] = task_env;
    lseek(in_fd, 0, SEEK_SET);
  } else {
    snprintf(tf, sizeof(tf), "%s/objective.txt", root);
    if (objective != NULL) envp[e++] = objective;
    in_fd = open(tf, O_RDONLY | O_CLOEXEC);
  }
  snprintf(id, sizeof(id), "AGENT_ID=agent-%ld", s->index);
  snprintf(index, sizeof(index), "AGENT_INDEX=%ld", s->index);
  snprintf(attempt, sizeof(attempt), "CFN_ATTEMPT=%d", s->attempts);
  snprintf(task_file, sizeof(task_file), "CFN_TASK_FILE=%s", tf);
  envp[e++] = id;
  envp[e++] = index;
  envp[e++] = attempt;
  envp[e++] = task_file;
  envp[e] = NULL;
  out_fd = open_out(out);
  err_fd = out_fd < 0 ? -1 : open_out(err);
  if (in_fd < 0) {
    if (err_fd >= 0) dprintf(err_fd, "%s: %s: %s\n", prog, tf, strerror(errno));
    rc = 1;
  } else if (out_fd < 0 || err_fd < 0) {
    rc = 1;
  } else if (exe == NULL) {
    dprintf(err_fd, "%s: %s: command not found\n", prog, cmd[0]);
    rc = 127;
  } else {
    char *ebuf = NULL;
    int bad = 0;
    char **ev = have_task_env ? task_envp(s->index, envp, err_fd, &ebuf, &bad) : NULL;
    if (bad) {
      free(ebuf);
      rc = 126;
      goto spawned;
    }
    char **use_env = ev != NULL ? ev : envp;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    int r = posix_spawn(&pid, exe, &fa, &attr, cmd, use_env);
    if (r == ENOEXEC) {
      /* A script without #!: run it with sh, as execvp and bash do. */
      size_t n = 0;
      while (cmd[n] != NULL) n++;
      char **argv = calloc(n + 2, sizeof(char *));
      if (argv == NULL) die(1, "out of memory");
      argv[0] = "sh";
      argv[1] = exe;
      for (size_t i = 1; i <= n; i++) argv[i + 1] = cmd[i];
      r = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, use_env);
      free(argv);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(ev);
    free(ebuf);
    if (r != 0) {
      dprintf(err_fd, "%s: %s: %s\n", prog, exe, strerror(r));
      rc = r == ENOENT ? 127 : 126;
    }
  }
spawned:
  if (in_fd >= 0) close(in_fd);
  s->out_fd = out_fd;
  s->err_fd = err_fd;
  if (rc >= 0) {
    s->pid = -1;
    return rc;
  }
  s->pid = pid;
  return -1;
}

/* Starts slot s's attempt and settles it at once when it could not start. */
static void start(slot_t *s) {
  int rc = launch(s);
  /* Not retried: the slot is free. Retried: its backoff (>= 100 ms) starts now. */
  if (rc >= 0 && attempt_ended(s, rc, now_us())) *s = run[--nrun];
}

/* Punches the part of fd between keep_from and keep_to out of the file
 * (FALLOC_FL_PUNCH_HOLE keeps its size: outputBytes stays the raw size). */
static void punch(int fd, off_t from, off_t to) {
  from = (from + 4095) & ~(off_t)4095;
  to &= ~(off_t)4095;
  if (to > from) (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, from, to - from);
}

/* Every tick: timeouts (TERM at the deadline, KILL kill_after later) and the
 * raw output bound (stdout past --max-output and stderr before its last 64 KiB
 * are punched out once they hold `slack` bytes more than that). */
static void tick(int64_t now) {
  for (int i = 0; i < nrun; i++) {
    slot_t *s = &run[i];
    if (s->pid <= 0) continue;
    if (s->kill_at != 0) {
      if (now >= s->kill_at) {
        kill(s->pid, SIGKILL);
        s->kill_at = INT64_MAX;
      }
      continue;
    }
    if (stopping || (limit_us > 0 && now - s->a0 >= limit_us)) {
      kill(s->pid, SIGTERM);
      s->kill_at = now + kill_after_us;
      continue;
    }
    if (s->ticks++ == 0) continue; /* most attempts end before their second scan */
    struct stat st;
    if (fstat(s->out_fd, &st) == 0 && st.st_size > resp_cfg.max_output + slack) punch(s->out_fd, resp_cfg.max_output, st.st_size);
    if (fstat(s->err_fd, &st) == 0 && st.st_size > ERR_KEEP + slack) punch(s->err_fd, 0, st.st_size - ERR_KEEP);
  }
}

static long *read_queue(const char *path, size_t *n) {
  FILE *f = fopen(path, "re");
  if (f == NULL) die(1, "%s: %s", path, strerror(errno));
  size_t cap = 1024;
  long *q = xmalloc(cap * sizeof(long));
  char buf[64];
  *n = 0;
  while (q != NULL && fgets(buf, sizeof(buf), f) != NULL) {
    long long v;
    buf[strcspn(buf, "\n")] = '\0';
    if (parse_num(buf, 0, INDEX_MAX, &v) != 0) die(1, "%s: not an agent index: %.40s", path, buf);
    if (*n == cap) q = realloc(q, (cap *= 2) * sizeof(long));
    if (q != NULL) q[(*n)++] = (long)v;
  }
  if (q == NULL) die(1, "out of memory");
  fclose(f);
  return q;
}

/* The options spawn and relay share; returns how many arguments they took. */
static int parse_options(int argc, char **argv) {
  int i = 0;
  while (i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0') {
    const char *o = argv[i];
    if (i + 1 >= argc) die(2, "%s needs a value (see --help)", o);
    const char *v = argv[i + 1];
    long long n;
    if (strcmp(o, "--max-output") == 0) {
      if (parse_num(v, 1, (long long)1 << 40, &n) != 0) die(2, "--max-output needs a byte count");
      resp_cfg.max_output = n;
    } else if (strcmp(o, "--timeout-text") == 0) {
      if (v[0] == '\0') die(2, "--timeout-text needs the --agent-timeout text");
      resp_cfg.timeout_text = v;
    } else if (strcmp(o, "--no-retry") == 0) {
      if (parse_codes(v) != 0) die(2, "--no-retry needs exit codes 1-255 (\"2,3\")");
    } else if (strcmp(o, "--kill-after") == 0) {
      if ((kill_after_us = parse_seconds(v)) < 0) die(2, "--kill-after needs seconds");
    } else if (strcmp(o, "--first-attempt") == 0) {
      if (parse_num(v, 1, 1000, &n) != 0) die(2, "--first-attempt needs a number 1-1000");
      first_attempt = (int)n;
    } else if (strcmp(o, "--records") == 0) {
      if (strlen(v) < 16 || strspn(v, "0123456789abcdef") != strlen(v)) die(2, "--records needs a hex nonce");
      nonce = v;
    } else {
      die(2, "unknown option %s (see --help)", o);
    }
    i += 2;
  }
  return i;
}

static void usage(void) {
  fputs("Usage: launcher serve [--parent-pid PID] CHAN\n"
        "       launcher relay [OPTIONS] ROOT QUEUE_FILE CONCURRENCY RETRIES AGENT_TIMEOUT_US -- CMD [ARG...]\n"
        "       launcher spawn [OPTIONS] ROOT QUEUE_FILE CONCURRENCY RETRIES AGENT_TIMEOUT_US -- CMD [ARG...]\n"
        "\n"
        "The V2 engine's agent launcher (docs/v2-engine.md \"Who runs an agent\").\n"
        "spawn runs the agents QUEUE_FILE lists (one index per line, at most\n"
        "CONCURRENCY at once): stdin <ROOT>/tasks/<i> (else <ROOT>/objective.txt),\n"
        "the variables of <ROOT>/task-env/<i>, stdout/stderr in ROOT/work/; retries\n"
        "failures (backoff 100 ms x 2^n), stops an attempt past AGENT_TIMEOUT_US\n"
        "(TERM, then KILL --kill-after seconds later), publishes each final\n"
        "response in ROOT/responses/ and prints W INDEX completed|failed.\n"
        "relay does the same through the launcher serving $CFN_LAUNCHER_DIR\n"
        "(without it, here like spawn).\n"
        "\n"
        "Options: --max-output BYTES (65536), --timeout-text TEXT (the\n"
        "--agent-timeout text of \"timed out after <it>s\"), --no-retry CODES\n"
        "(\"2,3\": final at once), --kill-after SECONDS (2), --first-attempt N\n"
        "(CFN_ATTEMPT of the first attempt, 1), --records NONCE\n"
        "(spawn: responses as channel records on stdout).\n",
        stdout);
}

/* launcher spawn: the agents of one queue, run here. */
/* ROOT QUEUE CONCURRENCY RETRIES TIMEOUT_US -- CMD...: the arguments spawn
 * and relay share, checked and set (root, concurrency, retries, limit_us, cmd). */
static void parse_run_args(int argc, char **argv) {
  long long conc, rets, lim;
  if (argc < 7 || strcmp(argv[5], "--") != 0) die(2, "usage: see --help");
  if (parse_num(argv[2], 1, 100000, &conc) || parse_num(argv[3], 0, 100, &rets) || parse_num(argv[4], 0, INT64_MAX / 4, &lim))
    die(2, "usage: see --help");
  root = argv[0];
  concurrency = (int)conc;
  retries = (int)rets;
  limit_us = lim;
  cmd = argv + 6;
}

static int spawn_main(int argc, char **argv) {
  int k = parse_options(argc, argv);
  argv += k;
  argc -= k;
  parse_run_args(argc, argv);
  const char *sl = getenv("CFN_OUTPUT_SLACK");
  long long v;
  if (sl != NULL && parse_num(sl, 0, (long long)1 << 40, &v) == 0) slack = v;
  size_t n = 0, pos = 0;
  long *queue = read_queue(argv[1], &n);
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/objective.txt", root);
  read_objective(path);
  snprintf(path, sizeof(path), "%s/tasks", root);
  struct stat st;
  have_tasks = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(path, sizeof(path), "%s/task-env", root);
  have_task_env = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  task_env = xmalloc(TASK_ENV_MAX + 16);
  memcpy(task_env, "CFN_TASK=", 9);
  build_env();
  exe = resolve(cmd[0]);
  run = calloc((size_t)concurrency, sizeof(slot_t));
  if (run == NULL) die(1, "out of memory");
  if (nonce != NULL) {
    char hello[64];
    int len = snprintf(hello, sizeof(hello), "%s H\n", nonce);
    if (write_all(STDOUT_FILENO, hello, (size_t)len) != 0) die(1, "cannot reach the relay: %s", strerror(errno));
  }
  /* SIGCHLD stays pending while blocked: it wakes sigtimedwait. TERM/INT
   * stop the run: the running agents get TERM (KILL later), none is final. */
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, SIGCHLD);
  sigaddset(&wake, SIGTERM);
  sigaddset(&wake, SIGINT);
  sigprocmask(SIG_BLOCK, &wake, NULL);
  snprintf(path, sizeof(path), "%s/stop", root);
  int64_t next_tick = now_us() + TICK_US;
  for (;;) {
    while (!stopping && nrun < concurrency && pos < n) {
      slot_t *s = &run[nrun++];
      *s = (slot_t){.index = queue[pos++], .out_fd = -1, .err_fd = -1, .attempts = first_attempt - 1};
      start(s);
    }
    /* Backoffs that are due start now; the nearest other one bounds the wait. */
    int64_t now = now_us(), next = next_tick;
    for (int i = 0; i < nrun; i++) {
      if (run[i].pid != 0) continue;
      if (stopping) {
        run[i--] = run[--nrun];
      } else if (run[i].a0 <= now) {
        start(&run[i]);
        i = -1; /* start may have moved slots: look again */
        now = now_us();
        next = next_tick;
      } else if (run[i].a0 < next) {
        next = run[i].a0;
      }
    }
    flush_reports();
    if (nrun == 0) {
      if (!stopping && pos < n) continue;
      break;
    }
    int status, reaped = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      reaped = 1;
      int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      for (int i = 0; i < nrun; i++) {
        if (run[i].pid != pid) continue;
        if (attempt_ended(&run[i], rc, now_us())) run[i] = run[--nrun];
        break;
      }
    }
    now = now_us();
    if (now >= next_tick) {
      if (nonce != NULL && !stopping && access(path, F_OK) == 0) stopping = 1;
      tick(now);
      next_tick = now + TICK_US;
    }
    if (reaped) continue;
    int64_t wait_us = (next < next_tick ? next : next_tick) - now;
    if (wait_us > 0) {
      struct timespec ts = {.tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000};
      int sig = sigtimedwait(&wake, NULL, &ts);
      if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
        stopping = 1;
        tick(now_us());
      }
    }
  }
  flush_reports();
  free(queue);
  return stopping ? 143 : 0;
}

/* ---- the channel ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP) rmdir(path);
  else unlink(path);
  return 0;
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void mkdir_shared(const char *path) {
  if (mkdir(path, 02770) != 0 && errno != EEXIST) die(1, "%s: %s", path, strerror(errno));
}

/* The agent side: serves the requests of CHAN/new/ until TERM. */
static void serve_request(const char *chan, const char *id);

static int serve_main(int argc, char **argv) {
  long long parent = 0;
  if (argc == 3 && strcmp(argv[0], "--parent-pid") == 0 && parse_num(argv[1], 1, INT_MAX, &parent) == 0) {
    argv += 2;
    argc -= 2;
  }
  if (argc != 1) die(2, "usage: launcher serve [--parent-pid PID] CHAN");
  const char *chan = argv[0];
  char path[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
  /* Shared with the coordinator (the pod's common group), never with others. */
  umask(007);
  prctl(PR_SET_DUMPABLE, 0);
  mkdir_shared(chan);
  snprintf(path, sizeof(path), "%s/new", chan);
  mkdir_shared(path);
  snprintf(path, sizeof(path), "%s/tmp", chan);
  mkdir_shared(path);
  snprintf(path, sizeof(path), "%s/run", chan);
  mkdir_shared(path);
  snprintf(path, sizeof(path), "%s/new", chan);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGCHLD);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ifd >= 0 && inotify_add_watch(ifd, path, IN_MOVED_TO | IN_CREATE) < 0) {
    close(ifd);
    ifd = -1;
  }
  pid_t kids[256];
  int children = 0, stop = 0;
  fprintf(stderr, "%s: serving %s\n", prog, chan);
  while (!stop || children > 0) {
    DIR *d = stop ? NULL : opendir(path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
      if (de->d_name[0] == '.') continue;
      snprintf(from, sizeof(from), "%s/new/%s", chan, de->d_name);
      snprintf(to, sizeof(to), "%s/run/%s", chan, de->d_name);
      if (children == (int)(sizeof(kids) / sizeof(kids[0]))) break; /* the next scan takes it */
      if (rename(from, to) != 0) continue; /* another launcher took it */
      pid_t pid = fork();
      if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, &sigs, NULL);
        close(sfd);
        if (ifd >= 0) close(ifd);
        if (d != NULL) closedir(d);
        serve_request(chan, de->d_name);
      }
      if (pid > 0) kids[children++] = pid;
    }
    if (d != NULL) closedir(d);
    struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = ifd, .events = POLLIN}};
    poll(pf, ifd >= 0 ? 2 : 1, ifd >= 0 ? 200 : 10);
    char drain[4096];
    if (ifd >= 0) while (read(ifd, drain, sizeof(drain)) > 0) {}
    struct signalfd_siginfo si;
    /* A local launcher ends with the run that started it, however it ended. */
    int orphan = parent > 0 && kill((pid_t)parent, 0) != 0 && errno == ESRCH;
    while (orphan || read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
      if (orphan || si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
        orphan = 0;
        if (stop) continue;
        stop = 1;
        for (int i = 0; i < children; i++) kill(kids[i], SIGTERM); /* they stop their agents */
      }
    }
    pid_t done;
    while ((done = waitpid(-1, NULL, WNOHANG)) > 0) {
      for (int i = 0; i < children; i++) {
        if (kids[i] == done) kids[i] = kids[--children];
      }
    }
  }
  return 0;
}

/* A request's child: runs its agents with the records on the FIFO. */
static void serve_request(const char *chan, const char *id) {
  char req[PATH_MAX / 2], path[PATH_MAX];
  size_t len, elen;
  snprintf(req, sizeof(req), "%s/run/%s", chan, id);
  snprintf(path, sizeof(path), "%s/argv", req);
  char *args = read_all(path, &len);
  if (args == NULL) die(1, "%s: %s", path, strerror(errno));
  snprintf(path, sizeof(path), "%s/env", req);
  char *env = read_all(path, &elen);
  for (size_t off = 0; env != NULL && off < elen; off += strlen(env + off) + 1) putenv(env + off);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += args[i] == '\0';
  char **av = calloc(n + 4, sizeof(char *));
  if (av == NULL) die(1, "out of memory");
  size_t k = 0, a = 0;
  /* argv: OPTIONS CONC RETRIES LIMIT -- CMD: ROOT and QUEUE are the request's. */
  char *items[n + 1];
  for (size_t off = 0; off < len; off += strlen(args + off) + 1) items[a++] = args + off;
  size_t opts = 0;
  while (opts + 1 < a && strncmp(items[opts], "--", 2) == 0 && items[opts][2] != '\0') opts += 2;
  for (size_t i = 0; i < opts; i++) av[k++] = items[i];
  av[k++] = req;
  snprintf(path, sizeof(path), "%s/queue", req);
  av[k++] = strdup(path);
  for (size_t i = opts; i < a; i++) av[k++] = items[i];
  av[k] = NULL;
  snprintf(path, sizeof(path), "%s/records", req);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(1, "%s: %s", path, strerror(errno));
  dup2(fd, STDOUT_FILENO);
  close(fd);
  signal(SIGPIPE, SIG_IGN);
  _exit(spawn_main((int)k, av));
}

/* ---- relay: the coordinator side of one request ---- */

typedef struct {
  long *queue;
  size_t n;
  unsigned char *answered; /* by queue position */
  long quarantined;
} relay_t;

static int copy_file(const char *from, const char *to) {
  size_t len;
  char *d = read_all(from, &len);
  if (d == NULL) return errno == ENOENT ? 1 : -1;
  int rc = write_file(to, d, len);
  free(d);
  return rc;
}

static void quarantine(relay_t *r, const char *line, size_t len, const char *why) {
  char path[PATH_MAX];
  r->quarantined++;
  snprintf(path, sizeof(path), "%s/quarantine/launcher.%ld.%ld", root, (long)getpid(), r->quarantined);
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/quarantine", root);
  mkdir(dir, 0700);
  write_file(path, line, len > 65536 ? 65536 : len);
  fprintf(stderr, "%s: quarantined a launcher record (%s): %s (%ld so far)\n", prog, why, path, r->quarantined);
}

/* Checks one record line (without its \n) and publishes the response in it. */
static void relay_record(relay_t *r, char *line, size_t len, int *hello) {
  size_t nl = strlen(nonce);
  if (len < nl + 2 || memcmp(line, nonce, nl) != 0 || line[nl] != ' ') {
    quarantine(r, line, len, "not the request's nonce");
    return;
  }
  char *p = line + nl + 1;
  if (len == nl + 2 && *p == 'H') {
    *hello = 1;
    return;
  }
  if (len < nl + 4 || (p[0] != 'W' && p[0] != 'I') || p[1] != ' ') {
    quarantine(r, line, len, "not a response record");
    return;
  }
  p += 2;
  char *end;
  errno = 0;
  long idx = strtol(p, &end, 10);
  size_t pos = r->n;
  char kind = p[-2];
  int shape = end != p && errno == 0 && (kind == 'W' ? *end == ' ' : end == line + len);
  for (size_t i = 0; shape && i < r->n; i++) {
    if (r->queue[i] == idx && !r->answered[i]) pos = i;
  }
  if (pos == r->n) {
    quarantine(r, line, len, "an agent not asked for, or answered already");
    return;
  }
  if (kind == 'I') {
    /* An attempt the stop cut short: the trace the coordinator counts it by. */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/work/agent-%ld.%ld.out", root, idx, (long)getpid());
    write_file(path, "", 0);
    return;
  }
  char *json = end + 1;
  size_t jlen = len - (size_t)(json - line);
  char want[128];
  int wl = snprintf(want, sizeof(want), "{\"agentId\":\"agent-%ld\",\"index\":%ld,\"status\":\"", idx, idx);
  const char *status = response_status(json, jlen);
  int ok = status != NULL && jlen > (size_t)wl + 2 && memcmp(json, want, (size_t)wl) == 0 && json[jlen - 1] == '}';
  if (ok) {
    const char *code = json + wl + strlen(status) + 1;
    /* completed exactly when the exit code is 0 */
    ok = strncmp(code, ",\"exitCode\":", 12) == 0 && ((strcmp(status, "completed") == 0) == (strncmp(code + 12, "0,", 2) == 0));
  }
  if (!ok) {
    quarantine(r, line, len, "not a response of that agent");
    return;
  }
  char tag[64];
  snprintf(tag, sizeof(tag), "r%ld", (long)getpid());
  line[len] = '\n';
  status = response_publish(root, idx, json, jlen + 1, tag);
  r->answered[pos] = 1;
  if (sizeof(report) - report_len < 96) flush_reports();
  report_len += (size_t)snprintf(report + report_len, sizeof(report) - report_len, "W %ld %s\n", idx, status);
}

/* The longest line a launcher sends: the response's output escaped (6 bytes
 * a byte at most), its error line, the rest. */
static size_t record_max(void) { return (size_t)resp_cfg.max_output * 6 + 65536; }

static int relay_main(int argc, char **argv) {
  const char *chan = getenv("CFN_LAUNCHER_DIR");
  /* No launcher to hand the agents to (a topology run by itself): run them here. */
  if (chan == NULL || chan[0] == '\0') {
    prog = "launcher";
    return spawn_main(argc, argv);
  }
  if (chan[0] != '/' || strlen(chan) > 1024) die(2, "relay: CFN_LAUNCHER_DIR must be the launcher's channel directory (an absolute path)");
  int k = parse_options(argc, argv);
  if (nonce != NULL) die(2, "relay: --records is the launcher's");
  char **opt = argv;
  argv += k;
  argc -= k;
  parse_run_args(argc, argv);
  relay_t r = {0};
  r.queue = read_queue(argv[1], &r.n);
  r.answered = calloc(r.n + 1, 1);
  if (r.answered == NULL) die(1, "out of memory");
  umask(007);
  /* The request. */
  unsigned char rnd[16];
  static char hex[33];
  if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) die(1, "getrandom: %s", strerror(errno));
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  nonce = hex;
  char id[96], tmp[PATH_MAX / 2], newp[PATH_MAX / 2], runp[PATH_MAX / 2], path[PATH_MAX], from[PATH_MAX];
  snprintf(id, sizeof(id), "%ld.%s", (long)getpid(), hex);
  mkdir_shared(chan);
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s/%s", chan, i == 0 ? "tmp" : i == 1 ? "new" : "run");
    mkdir_shared(path);
  }
  snprintf(tmp, sizeof(tmp), "%s/tmp/%s", chan, id);
  snprintf(newp, sizeof(newp), "%s/new/%s", chan, id);
  snprintf(runp, sizeof(runp), "%s/run/%s", chan, id);
  if (mkdir(tmp, 0770) != 0) die(1, "%s: %s", tmp, strerror(errno));
  snprintf(path, sizeof(path), "%s/work", tmp);
  mkdir(path, 0770);
  snprintf(from, sizeof(from), "%s/objective.txt", root);
  snprintf(path, sizeof(path), "%s/objective.txt", tmp);
  copy_file(from, path);
  for (int pass = 0; pass < 2; pass++) {
    const char *sub = pass == 0 ? "tasks" : "task-env";
    struct stat st;
    snprintf(from, sizeof(from), "%s/%s", root, sub);
    if (stat(from, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    snprintf(path, sizeof(path), "%s/%s", tmp, sub);
    mkdir(path, 0770);
    for (size_t i = 0; i < r.n; i++) {
      snprintf(from, sizeof(from), "%s/%s/%ld", root, sub, r.queue[i]);
      snprintf(path, sizeof(path), "%s/%s/%ld", tmp, sub, r.queue[i]);
      if (copy_file(from, path) < 0) die(1, "%s: %s", path, strerror(errno));
    }
  }
  buf_t b = {0};
  char num[64];
  for (size_t i = 0; i < r.n; i++) {
    int l = snprintf(num, sizeof(num), "%ld\n", r.queue[i]);
    buf_put(&b, num, (size_t)l);
  }
  snprintf(path, sizeof(path), "%s/queue", tmp);
  if (write_file(path, b.data, b.len) != 0) die(1, "%s: %s", path, strerror(errno));
  b.len = 0;
  /* argv: the options, the nonce, the run's numbers and the command. */
  const char *ka = getenv("CFN_KILL_AFTER");
  for (int i = 0; i < k; i++) buf_put(&b, opt[i], strlen(opt[i]) + 1);
  if (ka != NULL && ka[0] != '\0') {
    buf_put(&b, "--kill-after", 13);
    buf_put(&b, ka, strlen(ka) + 1);
  }
  buf_put(&b, "--records", 10);
  buf_put(&b, hex, strlen(hex) + 1);
  for (int i = 2; i < argc; i++) buf_put(&b, argv[i], strlen(argv[i]) + 1);
  snprintf(path, sizeof(path), "%s/argv", tmp);
  if (write_file(path, b.data, b.len) != 0) die(1, "%s: %s", path, strerror(errno));
  /* env: the swarm's contract variables (the agent side has its own environment). */
  static const char *const contract[] = {"OBJECTIVE_ID", "SWARM_ID", "CFN_AGENTS_TOTAL", "CFN_OBJECTIVE"};
  b.len = 0;
  for (size_t i = 0; i < sizeof(contract) / sizeof(contract[0]); i++) {
    const char *v = getenv(contract[i]);
    if (v == NULL) continue;
    buf_put(&b, contract[i], strlen(contract[i]));
    buf_put(&b, "=", 1);
    buf_put(&b, v, strlen(v) + 1);
  }
  snprintf(path, sizeof(path), "%s/env", tmp);
  if (write_file(path, b.data, b.len) != 0) die(1, "%s: %s", path, strerror(errno));
  free(b.data);
  char fifo[PATH_MAX];
  snprintf(path, sizeof(path), "%s/records", tmp);
  if (mkfifo(path, 0660) != 0) die(1, "%s: %s", path, strerror(errno));
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die(1, "%s: %s", path, strerror(errno));
  if (rename(tmp, newp) != 0) die(1, "%s: %s", newp, strerror(errno));
  snprintf(fifo, sizeof(fifo), "%s/records", runp);
  /* Wait for the launcher, read its records. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  const char *w = getenv("CFN_LAUNCHER_WAIT");
  int64_t wait_us = w != NULL && parse_seconds(w) >= 0 ? parse_seconds(w) : 30000000;
  int64_t t0 = now_us(), stop_at = 0;
  int claimed = 0, hello = 0, stop = 0, eof = 0;
  pid_t parent = getppid();
  size_t cap = 1 << 16, have = 0, max = record_max();
  char *buf = xmalloc(cap + 1);
  while (!eof) {
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    poll(pf, 2, claimed ? 200 : 5);
    struct signalfd_siginfo si;
    /* The dispatcher gone (killed): stop as on TERM. */
    int orphan = getppid() != parent;
    while (orphan || read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
      orphan = 0;
      if (stop) continue;
      stop = 1;
      stop_at = now_us() + kill_after_us + 5000000;
      snprintf(path, sizeof(path), "%s/stop", claimed ? runp : newp);
      write_file(path, "", 0);
    }
    if (!claimed) {
      if (access(newp, F_OK) != 0) {
        claimed = 1;
      } else if (stop || now_us() - t0 > wait_us) {
        rm_tree(newp);
        if (stop) return 143;
        die(1, "no launcher took the agents' request within %.1fs (is `launcher serve %s` running?)", (double)wait_us / 1e6, chan);
      }
    }
    for (;;) {
      if (have == cap) {
        if (cap > max * 2) {
          quarantine(&r, buf, have, "a line longer than any response");
          have = 0;
        } else {
          cap *= 2;
          buf = realloc(buf, cap + 1);
          if (buf == NULL) die(1, "out of memory");
        }
      }
      ssize_t got = read(fd, buf + have, cap - have);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) break; /* EAGAIN */
      if (got == 0) {
        /* No writer: the launcher is done (or gone) once it has said hello. */
        if (hello || (claimed && now_us() - t0 > wait_us)) eof = 1;
        break;
      }
      have += (size_t)got;
      char *s = buf, *e;
      while ((e = memchr(s, '\n', have - (size_t)(s - buf))) != NULL) {
        int had = hello;
        relay_record(&r, s, (size_t)(e - s), &hello);
        if (!had && hello) unlink(fifo); /* both ends open: no one else may open it */
        s = e + 1;
      }
      have -= (size_t)(s - buf);
      memmove(buf, s, have);
      flush_reports();
    }
    if (stop && now_us() > stop_at) break;
  }
  if (have > 0) quarantine(&r, buf, have, "a record cut short");
  /* The agents the launcher never answered for: it ended first (killed, or
   * crashed). Final and failed, saying so; none when the run was stopped. */
  for (size_t i = 0; !stop && i < r.n; i++) {
    if (r.answered[i]) continue;
    buf_t resp = {0};
    char head[512], tag[64];
    long idx = r.queue[i];
    snprintf(head, sizeof(head),
             "{\"agentId\":\"agent-%ld\",\"index\":%ld,\"status\":\"failed\",\"exitCode\":null,\"attempts\":0,\"durationMs\":%lld,\"output\":\"\","
             "\"outputBytes\":0,\"outputTruncated\":false,\"error\":\"the launcher ended before agent-%ld's final answer "
             "(killed or crashed): its exit code is unknown\"}\n",
             idx, idx, (long long)((now_us() - t0) / 1000), idx);
    buf_put(&resp, head, strlen(head));
    snprintf(tag, sizeof(tag), "r%ld", (long)getpid());
    const char *status = response_publish(root, idx, resp.data, resp.len, tag);
    free(resp.data);
    fprintf(stderr, "%s: agent-%ld has no answer: the launcher ended first\n", prog, idx);
    if (sizeof(report) - report_len < 96) flush_reports();
    report_len += (size_t)snprintf(report + report_len, sizeof(report) - report_len, "W %ld %s\n", idx, status);
  }
  flush_reports();
  rm_tree(claimed ? runp : newp);
  return stop ? 143 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "serve") == 0) return serve_main(argc - 2, argv + 2);
  if (strcmp(argv[1], "relay") == 0) {
    prog = "launcher relay";
    return relay_main(argc - 2, argv + 2);
  }
  if (strcmp(argv[1], "spawn") == 0) return spawn_main(argc - 2, argv + 2);
  die(2, "unknown command %s (see --help)", argv[1]);
}
