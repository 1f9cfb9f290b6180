/*
 * The native agent spawner: a drop-in for bash/lib/spawner.sh, with the same
 * arguments, agent environment, files, watchdog registrations and reports
 * (docs/v2-engine.md "Who runs an agent"). lib/agent.sh runs it when it is
 * built (scripts/build-native.sh) and falls back to spawner.sh otherwise.
 *
 * Why it exists: a bash fork copies bash's page tables and then takes a
 * copy-on-write fault on every page either side writes, ~1.5 ms of CPU per
 * agent before the agent's own exec; posix_spawn (clone + vfork semantics)
 * shares the address space until exec and costs a small fraction of that.
 * With --responses it also writes each final attempt's response
 * (response.c); messages and detection stay in bash.
 *
 * Usage: spawner [--responses MAX_OUTPUT AGENT_TIMEOUT] [--no-retry CODES] ROOT QUEUE_FILE CONCURRENCY RETRIES AGENT_TIMEOUT_US WD_FD -- CMD [ARG...]
 * --no-retry CODES ("2,3"): an attempt ending with one of these exit codes is
 * final at once, whatever RETRIES allows.
 * Reports, one line per final attempt on stdout:
 *   R INDEX EXIT_CODE ATTEMPTS DURATION_MS TIMED_OUT(0|1)
 *   W INDEX completed|failed          (with --responses)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "response.h"

extern char **environ;

/* CFN_TASK_ENV_MAX of lib/common.sh: the largest task passed in CFN_TASK. */
#define TASK_ENV_MAX 131000
#define INDEX_MAX 999999999L

typedef struct {
  long index;
  int attempts;    /* attempts started */
  int64_t t0;      /* first attempt's start, us */
  int64_t a0;      /* this attempt's start (after its backoff), us */
  pid_t pid;       /* running attempt; 0 while waiting out a backoff */
} slot_t;

static const char *prog = "spawner";
static const char *root;
static char *const *cmd;
static char *exe;             /* the resolved program, NULL when missing */
static int concurrency, retries, wd_fd;
static int64_t limit_us;
static int have_tasks;
static int have_task_env;     /* ROOT/task-env exists: per-agent variables */
static char **envp;           /* base environment + per-attempt slots */
static size_t env_base;       /* entries of envp shared by every attempt */
static char *objective;       /* CFN_TASK=<objective>, NULL when too large */
static char *task_env;        /* buffer for a task's CFN_TASK=... */
static slot_t *run;           /* running attempts (and backoffs), at most concurrency */
static int nrun;
static int write_responses;   /* --responses: write them here, report W lines */
static unsigned char no_retry[256]; /* --no-retry: exit codes never retried */
static response_cfg_t resp_cfg;
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
    char *full = malloc(dlen + nlen + 3);
    if (full == NULL) die(1, "out of memory");
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
  objective = malloc(TASK_ENV_MAX + 16);
  if (objective == NULL) die(1, "out of memory");
  memcpy(objective, "CFN_TASK=", 9);
  int more = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
  /* A missing objective: every attempt fails opening its stdin, as in bash. */
  if (fd < 0 || read_text(fd, objective + 9, TASK_ENV_MAX, &more) < 0) objective[9] = '\0';
  if (fd >= 0) close(fd);
  if (more) {
    free(objective);
    objective = NULL;
  }
}

/* The attempt of slot s ended with rc (or never started): retry it after its
 * backoff, else report it and free the slot. Returns 1 when the slot is free. */
static int attempt_ended(slot_t *s, int rc, int64_t now) {
  int timed_out = rc != 0 && limit_us > 0 && now - s->a0 >= limit_us;
  if (rc != 0 && s->attempts <= retries && !(rc < 256 && no_retry[rc])) {
    int shift = s->attempts - 1 < 30 ? s->attempts - 1 : 30;
    s->pid = 0;
    s->a0 = now + ((int64_t)100000 << shift);
    return 0;
  }
  if (sizeof(report) - report_len < 96) flush_reports();
  if (write_responses) {
    const char *status = response_write(&resp_cfg, s->index, (long)getpid(), rc, s->attempts, (long long)((now - s->t0) / 1000), timed_out);
    report_len += (size_t)snprintf(report + report_len, sizeof(report) - report_len, "W %ld %s\n", s->index, status);
  } else {
    report_len += (size_t)snprintf(report + report_len, sizeof(report) - report_len, "R %ld %d %d %" PRId64 " %d\n", s->index,
                                   rc, s->attempts, (now - s->t0) / 1000, timed_out);
  }
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
  *buf = NULL;
  *bad = 0;
  snprintf(path, sizeof(path), "%s/task-env/%ld", root, index);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return NULL;
  }
  size_t len = (size_t)st.st_size, got = 0;
  *buf = malloc(len + 1);
  if (*buf == NULL) die(1, "out of memory");
  while (got < len) {
    ssize_t r = read(fd, *buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  len = got;
  (*buf)[len] = '\0';
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
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
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
  if (s->attempts == 1) s->t0 = s->a0;
  snprintf(out, sizeof(out), "%s/work/agent-%ld.%ld.out", root, s->index, (long)getpid());
  snprintf(err, sizeof(err), "%s/work/agent-%ld.%ld.err", root, s->index, (long)getpid());
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
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  if (rc >= 0) {
    s->pid = -1;
    return rc;
  }
  s->pid = pid;
  char line[96];
  int len = snprintf(line, sizeof(line), "%ld %" PRId64 " %ld %ld\n", (long)pid, limit_us > 0 ? s->a0 + limit_us : 0,
                     s->index, (long)getpid());
  if (write_all(wd_fd, line, (size_t)len) != 0) die(1, "cannot register with the watchdog: %s", strerror(errno));
  return -1;
}

/* Starts slot s's attempt and settles it at once when it could not start. */
static void start(slot_t *s) {
  int rc = launch(s);
  /* Not retried: the slot is free. Retried: its backoff (>= 100 ms) starts now. */
  if (rc >= 0 && attempt_ended(s, rc, now_us())) *s = run[--nrun];
}

static void usage(void) {
  fputs("Usage: spawner [--responses MAX_OUTPUT AGENT_TIMEOUT] [--no-retry CODES] ROOT QUEUE_FILE CONCURRENCY RETRIES AGENT_TIMEOUT_US WD_FD -- CMD [ARG...]\n"
        "\n"
        "Internal to the V2 engine (started by lib/agent.sh): the native twin of\n"
        "lib/spawner.sh, with the same arguments, files and reports. Runs the agents\n"
        "whose indexes QUEUE_FILE lists (one per line): stdin <ROOT>/tasks/<i> (else\n"
        "<ROOT>/objective.txt), stdout/stderr ROOT/work/agent-<i>.<pid>.{out,err};\n"
        "registers each attempt with the watchdog on fd WD_FD; prints one line per\n"
        "final attempt: R INDEX EXIT_CODE ATTEMPTS DURATION_MS TIMED_OUT.\n"
        "\n"
        "--responses: writes each final attempt's response itself (the bytes\n"
        "lib/agent.sh writes; MAX_OUTPUT is --max-output, AGENT_TIMEOUT the\n"
        "--agent-timeout text) and reports W INDEX completed|failed instead.\n"
        "--no-retry CODES (\"2,3\", each 1-255): an attempt ending with one of these\n"
        "exit codes is final at once, whatever RETRIES allows.\n",
        stdout);
}

static long *read_queue(const char *path, size_t *n) {
  FILE *f = fopen(path, "re");
  if (f == NULL) die(1, "%s: %s", path, strerror(errno));
  size_t cap = 1024;
  long *q = malloc(cap * sizeof(long));
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

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    usage();
    return 0;
  }
  long long conc, rets, lim, fd, max_out;
  if (argc > 1 && strcmp(argv[1], "--responses") == 0) {
    if (argc < 4 || parse_num(argv[2], 1, (long long)1 << 40, &max_out) || argv[3][0] == '\0') die(2, "usage: see --help");
    write_responses = 1;
    resp_cfg.max_output = max_out;
    resp_cfg.timeout_text = argv[3];
    argv += 3;
    argc -= 3;
  }
  if (argc > 1 && strcmp(argv[1], "--no-retry") == 0) {
    if (argc < 3 || parse_codes(argv[2]) != 0) die(2, "--no-retry needs exit codes 1-255 (\"2,3\")");
    argv += 2;
    argc -= 2;
  }
  if (argc < 9 || strcmp(argv[7], "--") != 0) die(2, "usage: see --help");
  if (parse_num(argv[3], 1, 100000, &conc) || parse_num(argv[4], 0, 100, &rets) ||
      parse_num(argv[5], 0, INT64_MAX / 4, &lim) || parse_num(argv[6], 0, INT_MAX, &fd))
    die(2, "usage: see --help");
  root = argv[1];
  resp_cfg.root = root;
  concurrency = (int)conc;
  retries = (int)rets;
  limit_us = lim;
  wd_fd = (int)fd;
  cmd = argv + 8;
  /* The watchdog log is the spawner's to write, not the agents'. */
  if (fcntl(wd_fd, F_SETFD, FD_CLOEXEC) != 0) die(2, "fd %d: %s", wd_fd, strerror(errno));
  size_t n = 0, pos = 0;
  long *queue = read_queue(argv[2], &n);
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/objective.txt", root);
  read_objective(path);
  snprintf(path, sizeof(path), "%s/tasks", root);
  struct stat st;
  have_tasks = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(path, sizeof(path), "%s/task-env", root);
  have_task_env = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  task_env = malloc(TASK_ENV_MAX + 16);
  if (task_env == NULL) die(1, "out of memory");
  memcpy(task_env, "CFN_TASK=", 9);
  build_env();
  exe = resolve(cmd[0]);
  run = calloc((size_t)concurrency, sizeof(slot_t));
  if (run == NULL) die(1, "out of memory");
  /* SIGCHLD stays pending while blocked: it wakes sigtimedwait during a backoff. */
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  for (;;) {
    while (nrun < concurrency && pos < n) {
      slot_t *s = &run[nrun++];
      *s = (slot_t){.index = queue[pos++]};
      start(s);
    }
    /* Backoffs that are due start now; the nearest other one bounds the wait. */
    int64_t now = now_us(), next = 0;
    for (int i = 0; i < nrun; i++) {
      if (run[i].pid != 0) continue;
      if (run[i].a0 <= now) {
        start(&run[i]);
        i = -1; /* start may have moved slots: look again */
        now = now_us();
        next = 0;
      } else if (next == 0 || run[i].a0 < next) {
        next = run[i].a0;
      }
    }
    flush_reports();
    if (nrun == 0) {
      if (pos < n) continue;
      break;
    }
    int status, reaped = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, reaped || next != 0 ? WNOHANG : 0)) != 0) {
      if (pid < 0) {
        if (errno == EINTR) continue;
        if (errno == ECHILD) break;
        die(1, "waitpid: %s", strerror(errno));
      }
      reaped = 1;
      int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      for (int i = 0; i < nrun; i++) {
        if (run[i].pid != pid) continue;
        if (attempt_ended(&run[i], rc, now_us())) run[i] = run[--nrun];
        break;
      }
    }
    if (!reaped && next != 0) {
      int64_t wait_us = next - now_us();
      if (wait_us > 0) {
        struct timespec ts = {.tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000};
        sigtimedwait(&chld, NULL, &ts);
      }
    }
  }
  flush_reports();
  free(queue);
  return 0;
}
