/*
 * The agent launcher (docs/v2-engine.md "Who runs an agent"): the one program
 * that starts agent attempts and turns their exit, stdout and stderr into
 * responses (response.c), for V2 and V1. Static, it needs nothing from the
 * image it runs in (no shell, no libc).
 *
 *   launcher serve CHAN   the agent side: runs in the agent container (or as a
 *                         local process for `cfn run`) and runs the agents of
 *                         the requests the coordinator side sends it.
 *   launcher serve --slot [--wipe DIR]... CHAN
 *                         one slot of an isolated pod (spec.agent.isolation
 *                         container: an agent container per slot): one request
 *                         and one agent at a time; before each attempt and
 *                         after the last it kills every process left (as PID 1 of
 *                         its container: all but itself; elsewhere only its
 *                         agents' groups and descendants) and empties each DIR
 *                         (never following a symlink or crossing a mount).
 *   launcher hub [--slots N] CHAN SOCK  the coordinator side's one connection
 *                         to serve: hands serve the request of each relay that
 *                         connects to SOCK (a path only the coordinator can
 *                         reach); with --slots, to slot k's serve (CHAN/k) the
 *                         requests of SOCK.k.
 *   launcher relay ...    one batch of agents (V2): sends them to serve (via
 *                         $CFN_LAUNCHER_HUB, else $CFN_LAUNCHER_DIR, else a
 *                         launcher of its own, forked here), validates what
 *                         comes back, publishes the responses in ROOT/responses/
 *                         and reports "W INDEX completed|failed" on stdout.
 *   launcher session ...  the same for V1: attempts come in as frames on
 *                         stdin, for as long as the run lasts, and each
 *                         response goes out as "W INDEX RESPONSE" (or
 *                         "I INDEX": stopped, no answer) on stdout.
 *   launcher spawn ...    relay with a launcher of its own, whatever the environment.
 *
 * With CFN_LAUNCHER_SLOTS=N (and a hub or CFN_LAUNCHER_DIR), relay and session
 * open one request per slot and give a slot its next agent only once its
 * last one is answered; a slot's request may answer for that agent alone.
 *
 * The channel. serve listens on CHAN/launcher.sock until the coordinator side
 * connects (the hub, or a relay or session by itself), then removes the name:
 * no other process can reach it again, and it is made before any agent runs.
 * A request is a socket pair: one end goes to serve over that connection
 * (SCM_RIGHTS), the other stays with the relay. Over it go the frames of the
 * run (its argv, contract environment, objective) and of each agent (index,
 * attempt, own variables, task), and back one line per final agent, "NONCE W
 * INDEX RESPONSE", which the relay validates (anything else is quarantined:
 * counted, never published). No task rests in a file: serve holds the tasks
 * of the agents it has not started in its memory (it is not dumpable: an
 * agent, the same user, cannot read its memory or its /proc/PID/fd), and an
 * agent gets its own on stdin (a sealed memfd) and in CFN_TASK; its stdout and
 * stderr are memfds too. Every descriptor of the launcher is close-on-exec.
 * When the connection ends serve stops every agent (as PID 1 of the agent
 * container: kills every process left) before it listens again.
 *
 * Why posix_spawn: a fork copies the page tables and takes a copy-on-write
 * fault on every page either side writes afterwards; posix_spawn shares the
 * address space until exec.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
/* The largest frame: a task (or objective) of up to 1 GiB. */
#define FRAME_MAX (1u << 30)
#define SOCK_NAME "launcher.sock"
/* What an agent's stdin is, for CFN_TASK_FILE: its task (a memfd, no path). */
#define TASK_FILE "/proc/self/fd/0"

/* Frames of a request (relay -> serve; V1 -> session): a type byte, a 4-byte
 * little-endian length, the payload. */
enum {
  F_ARGV = 'A',   /* OPTIONS CONC RETRIES LIMIT_US -- CMD..., each ended by NUL */
  F_ENV = 'E',    /* NAME=VALUE entries, each ended by NUL */
  F_OBJ = 'O',    /* the objective text */
  F_RUN = 'R',    /* "INDEX ATTEMPT HAS_TASK ENVLEN\n", ENVLEN bytes of own variables, the task */
  F_STOP = 'S',   /* "": stop every agent; "INDEX": stop that one (no answer: "I INDEX") */
  F_END = 'Z',    /* no more agents: the launcher ends once they have (its end of the socket: the relay is gone) */
};

typedef struct {
  long index;
  int attempts;    /* attempts started */
  int first;       /* CFN_ATTEMPT of the first attempt here (V1 retries itself) */
  int64_t t0;      /* first attempt's start, us */
  int64_t a0;      /* this attempt's start (after its backoff), us */
  pid_t pid;       /* running attempt; 0 while waiting out a backoff */
  int out_fd, err_fd;
  int64_t kill_at; /* TERM sent: KILL at this time */
  int ticks;       /* scans seen running */
  int stopped;     /* stopped by a frame: interrupted, never final */
  int has_task;    /* else its task is the objective */
  char *task, *tenv;
  size_t task_len, tenv_len;
} slot_t;

static const char *prog = "launcher";
static const char *root;
static char *const *cmd;
static char *exe;             /* the resolved program, NULL when missing */
static int concurrency, retries;
static int64_t limit_us, kill_after_us = 2000000, slack = 4194304;
static char **envp;           /* base environment + per-attempt slots */
static size_t env_base;       /* entries of envp shared by every attempt */
static char *objective;       /* the objective text */
static size_t objective_len;
static char *task_env;        /* buffer for a task's CFN_TASK=... */
static slot_t *run;           /* running attempts (and backoffs) */
static int nrun, run_cap;
static slot_t *pend;          /* agents received, not started */
static size_t npend, pend_head, pend_cap;
static const char *nonce;     /* --records: the request's */
static unsigned char no_retry[256]; /* --no-retry: exit codes never retried */
static response_cfg_t resp_cfg = {.max_output = 65536, .timeout_text = "0"};
static int stopping;
static int stream_fd = -1;    /* serve's end of the request */
static int relay_gone;        /* the records cannot be sent any more */
static char report[1 << 16];
static size_t report_len;
static int session;           /* session: W INDEX RESPONSE on stdout, no files */
/* serve --slot: one agent at a time, and nothing of an agent left for the next */
static int slot_mode;
static int in_pid1;           /* serve is PID 1 of its container */
static const char *wipe_dirs[8];
static int nwipe;
static pid_t *agent_groups;   /* slot, not PID 1: the process groups of the agents started */
static size_t ngroups, groups_cap;

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

/* Room for one more in ARR (N of *CAP elements of SIZE bytes): doubles it, from FIRST. */
static void *grow(void *arr, size_t size, size_t n, size_t *cap, size_t first) {
  if (n < *cap) return arr;
  *cap = *cap ? *cap * 2 : first;
  arr = realloc(arr, *cap * size);
  if (arr == NULL) die(1, "out of memory");
  return arr;
}

/* The same for a queue whose elements before *HEAD are consumed: those go first. */
static void *queue_room(void *arr, size_t size, size_t *n, size_t *head, size_t *cap, size_t first) {
  if (*n == *cap && *head > 0) {
    memmove(arr, (char *)arr + *head * size, (*n - *head) * size);
    *n -= *head;
    *head = 0;
  }
  return grow(arr, size, *n, cap, first);
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
  /* A session outlives a coordinator killed mid-run (its agents run to their
   * end, as without it): what it would answer has no reader left. */
  if (write_all(STDOUT_FILENO, report, report_len) != 0 && !session) die(1, "cannot write reports: %s", strerror(errno));
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

static int parse_options(int argc, char **argv);
static void parse_counts(int argc, char **argv);
static void slot_reset(void);

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

/* A whole send on the request (no SIGPIPE); once it fails, the relay is gone:
 * the agents stop, nothing more is sent. */
static void send_rec(const char *data, size_t len) {
  while (!relay_gone && len > 0) {
    ssize_t w = send(stream_fd, data, len, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      relay_gone = 1;
      stopping = 1;
      return;
    }
    data += w;
    len -= (size_t)w;
  }
}

static void free_slot(slot_t *s) {
  if (s->out_fd >= 0) close(s->out_fd);
  if (s->err_fd >= 0) close(s->err_fd);
  s->out_fd = s->err_fd = -1;
  free(s->task);
  free(s->tenv);
  s->task = s->tenv = NULL;
}

/* Stopped, not final: no answer, only "I INDEX" (the relay leaves its trace). */
static void send_interrupted(long index) {
  char rec[96];
  int n = snprintf(rec, sizeof(rec), "%s I %ld\n", nonce, index);
  send_rec(rec, (size_t)n);
}

/* Agent s's final attempt: its response, sent as a record. */
static void final_response(slot_t *s, int rc, long long ms, int timed_out) {
  buf_t resp = {0};
  char head[96];
  response_build(&resp_cfg, s->index, s->out_fd, s->err_fd, rc, s->attempts, ms, timed_out, &resp);
  int n = snprintf(head, sizeof(head), "%s W %ld ", nonce, s->index);
  send_rec(head, (size_t)n);
  send_rec(resp.data, resp.len);
  free(resp.data);
}

/* The attempt of slot s ended with rc (or never started): retry it after its
 * backoff, else answer for it. Returns 1 when the slot is over (freed). */
static int attempt_ended(slot_t *s, int rc, int64_t now) {
  int timed_out = rc != 0 && limit_us > 0 && now - s->a0 >= limit_us;
  s->kill_at = 0;
  if (stopping || s->stopped) {
    send_interrupted(s->index);
    free_slot(s);
    return 1;
  }
  int tried = s->attempts - s->first + 1;
  if (rc != 0 && tried <= retries && !(rc < 256 && no_retry[rc])) {
    int shift = tried - 1 < 30 ? tried - 1 : 30;
    if (s->out_fd >= 0) close(s->out_fd);
    if (s->err_fd >= 0) close(s->err_fd);
    s->out_fd = s->err_fd = -1;
    s->pid = 0;
    s->a0 = now + ((int64_t)100000 << shift);
    return 0;
  }
  final_response(s, rc, (long long)((now - s->t0) / 1000), timed_out);
  free_slot(s);
  return 1;
}

/* The environment of an attempt of agent s with its own variables (NAME=VALUE
 * entries, each ended by NUL: data, never evaluated): those first, then the
 * shared ones not named by them, then the attempt's own (base[env_base..]).
 * NULL when the agent has none, or on a bad entry (reported on err_fd, *bad set). */
static char **task_envp(const slot_t *s, char **base, int err_fd, int *bad) {
  *bad = 0;
  if (s->tenv_len == 0) return NULL;
  size_t nvars = 0, nbase = 0;
  for (size_t i = 0; i < s->tenv_len; i++) nvars += s->tenv[i] == '\0';
  while (base[nbase] != NULL) nbase++;
  char **ev = calloc(nvars + nbase + 2, sizeof(char *));
  if (ev == NULL) die(1, "out of memory");
  size_t e = 0;
  for (size_t off = 0; off < s->tenv_len;) {
    char *kv = s->tenv + off;
    size_t kvlen = strnlen(kv, s->tenv_len - off);
    char *eq = memchr(kv, '=', kvlen);
    if (eq == NULL || kvlen == s->tenv_len - off || !task_env_name_ok(kv, (size_t)(eq - kv))) {
      dprintf(err_fd, "%s: task-env/%ld: invalid or engine variable name\n", prog, s->index);
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

/* A memfd named NAME (no path: only its holders reach it), close-on-exec. */
static int mem_file(const char *name, unsigned flags) {
  int fd = memfd_create(name, MFD_CLOEXEC | flags);
  if (fd < 0) fprintf(stderr, "%s: memfd_create: %s\n", prog, strerror(errno));
  return fd;
}

/* The agent's stdin: its task in a sealed memfd, read from the start. */
static int task_file(const char *data, size_t len) {
  int fd = mem_file("task", MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  if (write_all(fd, data, len) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

/* Starts the next attempt of slot s now; returns its exit code when it could
 * not start (the attempt is over), else -1. */
static int launch(slot_t *s) {
  char id[32], index[32], attempt[32];
  int in_fd = -1, rc = -1;
  size_t e = env_base;
  pid_t pid = 0;
  s->attempts++;
  s->a0 = now_us();
  s->ticks = 0;
  s->kill_at = 0;
  if (s->attempts == s->first) s->t0 = s->a0;
  const char *text = s->has_task ? s->task : objective;
  size_t tlen = s->has_task ? s->task_len : objective_len;
  /* CFN_TASK: up to its first NUL, unset beyond TASK_ENV_MAX. */
  size_t vlen = strnlen(text, tlen < (size_t)TASK_ENV_MAX + 1 ? tlen : (size_t)TASK_ENV_MAX + 1);
  if (vlen <= TASK_ENV_MAX) {
    memcpy(task_env + 9, text, vlen);
    task_env[9 + vlen] = '\0';
    envp[e++] = task_env;
  }
  snprintf(id, sizeof(id), "AGENT_ID=agent-%ld", s->index);
  snprintf(index, sizeof(index), "AGENT_INDEX=%ld", s->index);
  snprintf(attempt, sizeof(attempt), "CFN_ATTEMPT=%d", s->attempts);
  envp[e++] = id;
  envp[e++] = index;
  envp[e++] = attempt;
  envp[e++] = "CFN_TASK_FILE=" TASK_FILE;
  envp[e] = NULL;
  s->out_fd = mem_file("stdout", 0);
  s->err_fd = s->out_fd < 0 ? -1 : mem_file("stderr", 0);
  in_fd = task_file(text, tlen);
  if (s->out_fd < 0 || s->err_fd < 0 || in_fd < 0) {
    if (s->err_fd >= 0) dprintf(s->err_fd, "%s: cannot prepare agent-%ld's files: %s\n", prog, s->index, strerror(errno));
    rc = 1;
  } else if (exe == NULL) {
    dprintf(s->err_fd, "%s: %s: command not found\n", prog, cmd[0]);
    rc = 127;
  } else {
    int bad = 0;
    char **ev = task_envp(s, envp, s->err_fd, &bad);
    if (bad) {
      rc = 126;
      goto spawned;
    }
    char **use_env = ev != NULL ? ev : envp;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, s->out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, s->err_fd, STDERR_FILENO);
    /* Nothing of ours past 0-2, whatever the launcher was started with. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    /* A slot's agent leads its own process group: what it leaves behind is
     * found by it where the launcher is not PID 1 (kill_leftovers). */
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (slot_mode ? POSIX_SPAWN_SETPGROUP : 0));
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
    if (r != 0) {
      dprintf(s->err_fd, "%s: %s: %s\n", prog, exe, strerror(r));
      rc = r == ENOENT ? 127 : 126;
    }
  }
spawned:
  if (in_fd >= 0) close(in_fd);
  if (rc >= 0) {
    s->pid = -1;
    return rc;
  }
  s->pid = pid;
  if (slot_mode && !in_pid1) {
    agent_groups = grow(agent_groups, sizeof(pid_t), ngroups, &groups_cap, 16);
    agent_groups[ngroups++] = pid;
  }
  return -1;
}

/* Starts slot i's attempt and settles it at once when it could not start. */
static void start(int i) {
  /* A slot's attempt finds nothing of the one before it (a retry's included). */
  if (slot_mode) slot_reset();
  int rc = launch(&run[i]);
  /* Not retried: the slot is free. Retried: its backoff (>= 100 ms) starts now. */
  if (rc >= 0 && attempt_ended(&run[i], rc, now_us())) run[i] = run[--nrun];
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
    if (stopping || s->stopped || (limit_us > 0 && now - s->a0 >= limit_us)) {
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

/* ---- a slot: nothing of one agent left for the next ---- */

/* Kills every process an agent left. As PID 1 of the agent container (the
 * pod's slot), every process there but serve: kill(-1) spares PID 1 and the
 * caller. Elsewhere (cfn run, tests) only the agents' own process groups and
 * the descendants that fell to this process (a child subreaper), never
 * anything else of the user. Waits until they are gone: nothing runs while
 * the directories are emptied. */
static void kill_leftovers(void) {
  int64_t give_up = now_us() + 5000000;
  for (;;) {
    if (in_pid1) {
      kill(-1, SIGKILL);
    } else {
      for (size_t i = 0; i < ngroups; i++) kill(-agent_groups[i], SIGKILL);
      char path[64];
      snprintf(path, sizeof(path), "/proc/self/task/%ld/children", (long)getpid());
      size_t len = 0;
      char *kids = read_all(path, &len);
      for (char *p = kids, *end; kids != NULL && *p != '\0'; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        if (pid > 0) kill((pid_t)pid, SIGKILL);
      }
      free(kids);
    }
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r < 0 && errno == ECHILD) break;
    if (r == 0) {
      if (!in_pid1 && now_us() > give_up) break;
      usleep(1000);
    }
  }
  ngroups = 0;
}

/* Empties the directory dfd (on device dev) without following a symlink or
 * entering another mount; a directory nested deeper than WIPE_DEPTH moves up
 * into top first. Returns how many entries it removed or moved. */
#define WIPE_DEPTH 64
static int wipe_tree(int top, int dfd, dev_t dev, int depth) {
  static unsigned long moved;
  int total = 0, removed;
  int dup_fd = dup(dfd);
  DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
  if (d == NULL) {
    if (dup_fd >= 0) close(dup_fd);
    return 0;
  }
  do {
    removed = 0;
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      const char *n = e->d_name;
      if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
      struct stat st;
      if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (!S_ISDIR(st.st_mode)) {
        removed += unlinkat(dfd, n, 0) == 0;
        continue;
      }
      if (st.st_dev != dev) continue; /* a mount point: not ours to empty */
      if (depth >= WIPE_DEPTH) {
        char to[64];
        snprintf(to, sizeof(to), ".cfn-wipe.%lu", moved++);
        removed += renameat(dfd, n, top, to) == 0;
        continue;
      }
      int fd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == EACCES) {
        /* An agent took its own directory's permissions away: the same user gives them back. */
        int pfd = openat(dfd, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd >= 0) {
          char via[64];
          snprintf(via, sizeof(via), "/proc/self/fd/%d", pfd);
          chmod(via, 0700);
          close(pfd);
        }
        fd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (fd >= 0) {
        fchmod(fd, 0700);
        removed += wipe_tree(top, fd, dev, depth + 1);
        close(fd);
      }
      removed += unlinkat(dfd, n, AT_REMOVEDIR) == 0;
    }
    total += removed;
  } while (removed > 0);
  closedir(d);
  return total;
}

/* Empties each --wipe directory (its contents; the directory stays). */
static void wipe_all(void) {
  for (int i = 0; i < nwipe; i++) {
    int fd = open(wipe_dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      fprintf(stderr, "%s: cannot empty %s: %s\n", prog, wipe_dirs[i], strerror(errno));
      if (fd >= 0) close(fd);
      continue;
    }
    while (wipe_tree(fd, fd, st.st_dev, 0) > 0) {}
    close(fd);
  }
}

/* Between two agents of a slot: the last one's processes and files are gone. */
static void slot_reset(void) {
  kill_leftovers();
  wipe_all();
}

/* ---- frames ---- */

typedef struct {
  buf_t b;
  size_t off; /* parsed up to here */
  int eof;
} frames_t;

/* Reads what fd has now (MSG_DONTWAIT; read() for a pipe when sock is 0);
 * sets eof at its end. */
static void frames_fill(frames_t *f, int fd, int sock) {
  char tmp[65536];
  if (f->off > 0) {
    memmove(f->b.data, f->b.data + f->off, f->b.len - f->off);
    f->b.len -= f->off;
    f->off = 0;
  }
  while (!f->eof) {
    ssize_t r = sock ? recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT) : read(fd, tmp, sizeof(tmp));
    if (r > 0) {
      buf_put(&f->b, tmp, (size_t)r);
      if (f->b.len > (size_t)FRAME_MAX + 64) break;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) break;
    f->eof = 1;
  }
}

/* The next whole frame: its type (0 when none yet), payload and length. */
static int frame_next(frames_t *f, char **p, uint32_t *len) {
  size_t have = f->b.len - f->off;
  uint32_t n;
  if (have < 5) return 0;
  memcpy(&n, f->b.data + f->off + 1, 4);
  n = le32toh(n);
  if (n > FRAME_MAX) die(1, "a frame of %" PRIu32 " bytes: not a request", n);
  if (have < 5 + (size_t)n) return 0;
  int type = (unsigned char)f->b.data[f->off];
  *p = f->b.data + f->off + 5;
  *len = n;
  f->off += 5 + (size_t)n;
  return type;
}

static void frame_put(buf_t *b, int type, const char *p, size_t len) {
  char h[5];
  uint32_t n = htole32((uint32_t)len);
  h[0] = (char)type;
  memcpy(h + 1, &n, 4);
  buf_put(b, h, 5);
  buf_put(b, p, len);
}

static char *dup_bytes(const char *p, size_t n) {
  char *d = xmalloc(n + 1);
  memcpy(d, p, n);
  d[n] = '\0';
  return d;
}

/* An F_RUN frame: the agent joins the pending ones. */
static void take_run(char *p, uint32_t len) {
  char head[128];
  char *nl = memchr(p, '\n', len < sizeof(head) ? len : sizeof(head));
  long long idx, att, has, elen;
  if (nl == NULL) die(1, "a run frame without its head");
  memcpy(head, p, (size_t)(nl - p));
  head[nl - p] = '\0';
  char *save = NULL, *f1 = strtok_r(head, " ", &save), *f2 = strtok_r(NULL, " ", &save), *f3 = strtok_r(NULL, " ", &save), *f4 = strtok_r(NULL, " ", &save);
  if (f4 == NULL || parse_num(f1, 0, INDEX_MAX, &idx) || parse_num(f2, 1, 1000, &att) || parse_num(f3, 0, 1, &has) ||
      parse_num(f4, 0, FRAME_MAX, &elen))
    die(1, "a run frame with a bad head");
  size_t body = len - (size_t)(nl + 1 - p);
  if ((size_t)elen > body) die(1, "a run frame cut short");
  pend = queue_room(pend, sizeof(slot_t), &npend, &pend_head, &pend_cap, 64);
  slot_t *s = &pend[npend++];
  *s = (slot_t){.index = (long)idx, .attempts = (int)att - 1, .first = (int)att, .out_fd = -1, .err_fd = -1, .has_task = (int)has};
  s->tenv_len = (size_t)elen;
  s->tenv = s->tenv_len ? dup_bytes(nl + 1, s->tenv_len) : NULL;
  s->task_len = body - s->tenv_len;
  s->task = dup_bytes(nl + 1 + s->tenv_len, s->task_len);
}

/* An F_STOP frame: every agent, or the one it names (pending: dropped;
 * running: TERM, then KILL; either way "I INDEX", no answer). */
static void take_stop(const char *p, uint32_t len) {
  char num[32];
  long long idx;
  if (len == 0) {
    if (!stopping) {
      stopping = 1;
      tick(now_us());
    }
    return;
  }
  if (len >= sizeof(num)) return;
  memcpy(num, p, len);
  num[len] = '\0';
  if (parse_num(num, 0, INDEX_MAX, &idx)) return;
  for (size_t i = pend_head; i < npend; i++) {
    if (pend[i].index != idx) continue;
    send_interrupted(pend[i].index);
    free_slot(&pend[i]);
    memmove(pend + i, pend + i + 1, (npend - i - 1) * sizeof(slot_t));
    npend--;
    return;
  }
  for (int i = 0; i < nrun; i++) {
    if (run[i].index != idx) continue;
    if (run[i].pid == 0) {
      /* waiting out a backoff */
      send_interrupted(run[i].index);
      free_slot(&run[i]);
      run[i] = run[--nrun];
    } else {
      run[i].stopped = 1;
      tick(now_us());
    }
    return;
  }
}

/* The head of a request (argv, env, objective): the run's settings. */
static void take_head(frames_t *f) {
  char *argv_b = NULL, *env_b = NULL, *p;
  uint32_t alen = 0, elen = 0, len;
  int have_obj = 0;
  while (argv_b == NULL || env_b == NULL || !have_obj) {
    int t = frame_next(f, &p, &len);
    if (t == 0) {
      if (f->eof) _exit(0); /* the relay went before it asked anything */
      struct pollfd pf = {.fd = stream_fd, .events = POLLIN};
      poll(&pf, 1, 1000);
      frames_fill(f, stream_fd, 1);
      continue;
    }
    if (t == F_ARGV) {
      argv_b = dup_bytes(p, len);
      alen = len;
    } else if (t == F_ENV) {
      env_b = dup_bytes(p, len);
      elen = len;
    } else if (t == F_OBJ) {
      objective = dup_bytes(p, len);
      objective_len = len;
      have_obj = 1;
    } else {
      die(1, "a request frame before its head");
    }
  }
  for (size_t off = 0; off < elen; off += strlen(env_b + off) + 1) {
    if (strchr(env_b + off, '=') != NULL) putenv(env_b + off);
  }
  size_t n = 0;
  for (size_t i = 0; i < alen; i++) n += argv_b[i] == '\0';
  char **av = calloc(n + 1, sizeof(char *));
  if (av == NULL) die(1, "out of memory");
  size_t a = 0;
  for (size_t off = 0; off < alen && a < n; off += strlen(argv_b + off) + 1) av[a++] = argv_b + off;
  int k = parse_options((int)a, av);
  if (nonce == NULL) die(1, "a request without its nonce");
  parse_counts((int)a - k, av + k);
}

/* serve's side of one request (a forked child): runs its agents. */
static int run_stream(int fd) {
  frames_t f = {0};
  int ended = 0;
  stream_fd = fd;
  prctl(PR_SET_DUMPABLE, 0);
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, SIGCHLD);
  sigaddset(&wake, SIGTERM);
  sigaddset(&wake, SIGINT);
  sigprocmask(SIG_BLOCK, &wake, NULL);
  int sfd = signalfd(-1, &wake, SFD_CLOEXEC | SFD_NONBLOCK);
  take_head(&f);
  if (slot_mode) {
    /* One agent at a time, whatever the request says; what its agents leave
     * behind falls to this process, to be killed before the next one. */
    concurrency = 1;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  const char *sl = getenv("CFN_OUTPUT_SLACK");
  long long v;
  if (sl != NULL && parse_num(sl, 0, (long long)1 << 40, &v) == 0) slack = v;
  task_env = xmalloc(TASK_ENV_MAX + 16);
  memcpy(task_env, "CFN_TASK=", 9);
  build_env();
  exe = resolve(cmd[0]);
  char hello[64];
  int hl = snprintf(hello, sizeof(hello), "%s H\n", nonce);
  send_rec(hello, (size_t)hl);
  int64_t next_tick = now_us() + TICK_US;
  for (;;) {
    char *p;
    uint32_t len;
    int t;
    frames_fill(&f, fd, 1);
    while ((t = frame_next(&f, &p, &len)) != 0) {
      if (t == F_RUN && !stopping && !ended) take_run(p, len);
      else if (t == F_STOP) take_stop(p, len);
      else if (t == F_END) ended = 1;
    }
    if (f.eof && !stopping) {
      /* The relay is gone: nobody is left to answer to. */
      relay_gone = 1;
      stopping = 1;
      tick(now_us());
    }
    if (stopping) {
      for (size_t i = pend_head; i < npend; i++) free_slot(&pend[i]);
      npend = pend_head = 0;
    }
    while (!stopping && nrun < concurrency && pend_head < npend) {
      if (nrun == run_cap) {
        run_cap = run_cap ? run_cap * 2 : 64;
        run = realloc(run, (size_t)run_cap * sizeof(slot_t));
        if (run == NULL) die(1, "out of memory");
      }
      run[nrun++] = pend[pend_head++];
      start(nrun - 1);
    }
    /* Backoffs that are due start now; the nearest other one bounds the wait. */
    int64_t now = now_us(), next = next_tick;
    for (int i = 0; i < nrun; i++) {
      if (run[i].pid != 0) continue;
      if (stopping) {
        send_interrupted(run[i].index);
        free_slot(&run[i]);
        run[i--] = run[--nrun];
      } else if (run[i].a0 <= now) {
        start(i);
        i = -1; /* start may have moved slots: look again */
        now = now_us();
        next = next_tick;
      } else if (run[i].a0 < next) {
        next = run[i].a0;
      }
    }
    if (nrun == 0 && (stopping || (ended && pend_head == npend))) break;
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
      tick(now);
      next_tick = now + TICK_US;
    }
    if (reaped) continue;
    int64_t wait_us = (next < next_tick ? next : next_tick) - now;
    if (wait_us < 0) wait_us = 0;
    struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    poll(pf, f.eof ? 1 : 2, (int)((wait_us + 999) / 1000));
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
      if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !stopping) {
        stopping = 1;
        tick(now_us());
      }
    }
  }
  return 0;
}

/* The options of a run; returns how many arguments they took. */
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

/* CONCURRENCY RETRIES TIMEOUT_US -- CMD...: checked and set. */
static void parse_counts(int argc, char **argv) {
  long long conc, rets, lim;
  if (argc < 5 || strcmp(argv[3], "--") != 0) die(2, "usage: see --help");
  if (parse_num(argv[0], 1, 100000, &conc) || parse_num(argv[1], 0, 100, &rets) || parse_num(argv[2], 0, INT64_MAX / 4, &lim))
    die(2, "usage: see --help");
  concurrency = (int)conc;
  retries = (int)rets;
  limit_us = lim;
  cmd = argv + 4;
}

static void usage(void) {
  fputs("Usage: launcher serve [--parent-pid PID] [--slot [--wipe DIR]...] CHAN\n"
        "       launcher hub [--parent-pid PID] [--slots N] CHAN SOCK\n"
        "       launcher relay [OPTIONS] ROOT QUEUE_FILE CONCURRENCY RETRIES AGENT_TIMEOUT_US -- CMD [ARG...]\n"
        "       launcher spawn [OPTIONS] ROOT QUEUE_FILE CONCURRENCY RETRIES AGENT_TIMEOUT_US -- CMD [ARG...]\n"
        "       launcher session [OPTIONS] CONCURRENCY RETRIES AGENT_TIMEOUT_US -- CMD [ARG...]\n"
        "\n"
        "The agent launcher (docs/v2-engine.md \"Who runs an agent\").\n"
        "relay runs the agents QUEUE_FILE lists (one index per line, at most\n"
        "CONCURRENCY at once): stdin and CFN_TASK <ROOT>/tasks/<i> (else\n"
        "<ROOT>/objective.txt), the variables of <ROOT>/task-env/<i>; retries\n"
        "failures (backoff 100 ms x 2^n), stops an attempt past AGENT_TIMEOUT_US\n"
        "(TERM, then KILL --kill-after seconds later), publishes each final\n"
        "response in ROOT/responses/ and prints W INDEX completed|failed. The\n"
        "agents run in the launcher serving the channel: via the hub at\n"
        "$CFN_LAUNCHER_HUB, else the one at $CFN_LAUNCHER_DIR, else one of its own\n"
        "(spawn: always one of its own). session does the same for attempts sent\n"
        "as frames on stdin, answering W INDEX RESPONSE or I INDEX on stdout.\n"
        "With $CFN_LAUNCHER_SLOTS=N the agents' side is N slots (serve --slot on\n"
        "CHAN/k, or the hub's SOCK.k), each given one agent at a time.\n"
        "\n"
        "Options: --max-output BYTES (65536), --timeout-text TEXT (the\n"
        "--agent-timeout text of \"timed out after <it>s\"), --no-retry CODES\n"
        "(\"2,3\": final at once), --kill-after SECONDS (2).\n",
        stdout);
}

/* ---- the channel ---- */

static void mkdir_shared(const char *path) {
  if (mkdir(path, 02770) != 0 && errno != EEXIST) die(1, "%s: %s", path, strerror(errno));
}

/* A socket's address; one too long for sun_path goes through its directory,
 * opened (O_PATH) for it: /proc/self/fd/N/NAME. */
static void sock_addr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  if (strlen(path) < sizeof(a->sun_path)) {
    strcpy(a->sun_path, path);
    return;
  }
  static int dirfd = -1;
  static char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t dlen = slash == NULL ? 0 : (size_t)(slash - path);
  if (slash == NULL || dlen >= sizeof(dir)) die(2, "%s: not a socket path", path);
  if (dirfd < 0 || strncmp(dir, path, dlen) != 0 || dir[dlen] != '\0') {
    if (dirfd >= 0) close(dirfd);
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) die(1, "%s: %s", dir, strerror(errno));
  }
  if ((size_t)snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/%s", dirfd, slash + 1) >= sizeof(a->sun_path))
    die(2, "%s: a socket name too long", path);
}

static int listen_at(const char *path) {
  struct sockaddr_un a;
  sock_addr(&a, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) die(1, "socket: %s", strerror(errno));
  unlink(path);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0) die(1, "%s: %s", path, strerror(errno));
  return fd;
}

/* A connection to the socket at path; -1 when nothing listens there (yet). */
static int connect_to(const char *path) {
  struct sockaddr_un a;
  sock_addr(&a, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) die(1, "socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends fd (SCM_RIGHTS) in a one-byte message; -1 on failure. */
static int send_fd(int conn, int fd) {
  char byte = 'R';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof(u));
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t r;
  do r = sendmsg(conn, &m, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r == 1 ? 0 : -1;
}

/* Receives a message with one fd (close-on-exec): the fd, -1 when the message
 * had none, -2 at the connection's end. */
static int recv_fd(int conn) {
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int) * 4)];
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
  ssize_t r;
  do r = recvmsg(conn, &m, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return -2;
  int got = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (got < 0) got = fd;
      else close(fd);
    }
  }
  return got;
}

/* Whether the process of --parent-pid is gone (a local launcher ends with its run). */
static int orphaned(long long parent) { return parent > 0 && kill((pid_t)parent, 0) != 0 && errno == ESRCH; }

static long long parse_parent(int *argc, char ***argv) {
  long long parent = 0;
  if (*argc >= 2 && strcmp((*argv)[0], "--parent-pid") == 0) {
    if (parse_num((*argv)[1], 1, INT_MAX, &parent) != 0) die(2, "--parent-pid needs a pid");
    *argc -= 2;
    *argv += 2;
  }
  return parent;
}

static sigset_t serve_sigs;

/* TERMs the requests' children and waits for them (their agents stopped);
 * as PID 1 of the agent container, then kills every process left (an agent's
 * orphans), so nothing runs while serve listens again. */
static void end_requests(pid_t *kids, int *children, int sfd) {
  int64_t give_up = now_us() + kill_after_us + 5000000;
  for (int i = 0; i < *children; i++) kill(kids[i], SIGTERM);
  while (*children > 0) {
    pid_t done;
    while ((done = waitpid(-1, NULL, WNOHANG)) > 0) {
      for (int i = 0; i < *children; i++) {
        if (kids[i] == done) kids[i] = kids[--*children];
      }
    }
    if (*children == 0) break;
    if (now_us() > give_up) {
      for (int i = 0; i < *children; i++) kill(kids[i], SIGKILL);
    }
    struct pollfd pf = {.fd = sfd, .events = POLLIN};
    poll(&pf, 1, 100);
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {}
  }
  if (getpid() == 1) {
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
  }
  if (slot_mode) wipe_all();
}

/* The agent side: serves the requests of the one connection at a time. */
static int serve_main(int argc, char **argv) {
  long long parent = parse_parent(&argc, &argv);
  while (argc >= 1 && strncmp(argv[0], "--", 2) == 0) {
    if (strcmp(argv[0], "--slot") == 0) {
      slot_mode = 1;
    } else if (strcmp(argv[0], "--wipe") == 0 && argc >= 2 && argv[1][0] == '/' && nwipe < (int)(sizeof(wipe_dirs) / sizeof(wipe_dirs[0]))) {
      wipe_dirs[nwipe++] = argv[1];
      argc--;
      argv++;
    } else {
      die(2, "usage: launcher serve [--parent-pid PID] [--slot [--wipe DIR]...] CHAN");
    }
    argc--;
    argv++;
  }
  if (argc != 1 || (nwipe > 0 && !slot_mode)) die(2, "usage: launcher serve [--parent-pid PID] [--slot [--wipe DIR]...] CHAN");
  const char *chan = argv[0];
  in_pid1 = getpid() == 1;
  /* A slot starts (and restarts) empty: nothing of an agent before it. What
   * an agent leaves when its request process dies falls to serve. */
  if (slot_mode) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    slot_reset();
  }
  char path[PATH_MAX];
  /* Shared with the coordinator (the pod's common group), never with others. */
  umask(007);
  prctl(PR_SET_DUMPABLE, 0);
  mkdir_shared(chan);
  snprintf(path, sizeof(path), "%s/%s", chan, SOCK_NAME);
  sigemptyset(&serve_sigs);
  sigaddset(&serve_sigs, SIGCHLD);
  sigaddset(&serve_sigs, SIGTERM);
  sigaddset(&serve_sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &serve_sigs, NULL);
  int sfd = signalfd(-1, &serve_sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  pid_t kids[256];
  int children = 0, stop = 0, lfd = -1, conn = -1;
  fprintf(stderr, "%s: serving %s\n", prog, chan);
  while (!stop) {
    if (lfd < 0 && conn < 0) lfd = listen_at(path);
    struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = conn >= 0 ? conn : lfd, .events = POLLIN}};
    /* A slot takes the next request once the last one and its agents are gone. */
    int full = conn >= 0 && children == (slot_mode ? 1 : (int)(sizeof(kids) / sizeof(kids[0])));
    poll(pf, full ? 1 : 2, 200);
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) stop = 1;
    }
    if (orphaned(parent)) stop = 1;
    pid_t done;
    while ((done = waitpid(-1, NULL, WNOHANG)) > 0) {
      for (int i = 0; i < children; i++) {
        if (kids[i] != done) continue;
        kids[i] = kids[--children];
        if (slot_mode) slot_reset();
      }
    }
    if (stop || full || !(pf[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (conn < 0) {
      /* The coordinator side: the one connection. Its name goes at once. */
      conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (conn < 0) continue;
      close(lfd);
      lfd = -1;
      unlink(path);
      continue;
    }
    int fd = recv_fd(conn);
    if (fd == -2) {
      /* The coordinator side is gone: so are its agents, before anyone may connect again. */
      close(conn);
      conn = -1;
      end_requests(kids, &children, sfd);
      continue;
    }
    if (fd < 0) continue;
    pid_t pid = fork();
    if (pid == 0) {
      close(sfd);
      close(conn);
      _exit(run_stream(fd));
    }
    close(fd);
    if (pid > 0) kids[children++] = pid;
  }
  if (lfd >= 0) {
    close(lfd);
    unlink(path);
  }
  if (conn >= 0) close(conn);
  end_requests(kids, &children, sfd);
  return 0;
}

/* The coordinator side's one connection to serve: forwards each relay's
 * request (a socket end, SCM_RIGHTS) that arrives on SOCK; reconnects when
 * serve restarts. With --slots N it is that for each slot k: the serve of
 * CHAN/k, the requests of SOCK.k. */
#define SLOTS_MAX 1024
static int hub_main(int argc, char **argv) {
  long long parent = parse_parent(&argc, &argv);
  long long slots = 0;
  if (argc >= 2 && strcmp(argv[0], "--slots") == 0) {
    if (parse_num(argv[1], 1, SLOTS_MAX, &slots) != 0) die(2, "--slots needs a count (1-%d)", SLOTS_MAX);
    argc -= 2;
    argv += 2;
  }
  if (argc != 2) die(2, "usage: launcher hub [--parent-pid PID] [--slots N] CHAN SOCK");
  int n = slots > 0 ? (int)slots : 1;
  char(*path)[PATH_MAX] = calloc((size_t)n, PATH_MAX), (*sock)[PATH_MAX] = calloc((size_t)n, PATH_MAX);
  int *conn = xmalloc(sizeof(int) * (size_t)n), *lfd = xmalloc(sizeof(int) * (size_t)n);
  struct pollfd *pf = xmalloc(sizeof(struct pollfd) * (size_t)(2 * n + 1));
  if (path == NULL || sock == NULL) die(1, "out of memory");
  umask(077);
  for (int k = 0; k < n; k++) {
    if (slots > 0) {
      snprintf(path[k], PATH_MAX, "%s/%d/%s", argv[0], k, SOCK_NAME);
      snprintf(sock[k], PATH_MAX, "%s.%d", argv[1], k);
    } else {
      snprintf(path[k], PATH_MAX, "%s/%s", argv[0], SOCK_NAME);
      snprintf(sock[k], PATH_MAX, "%s", argv[1]);
    }
    lfd[k] = listen_at(sock[k]);
    conn[k] = -1;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  int stop = 0;
  while (!stop) {
    int away = 0;
    pf[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (int k = 0; k < n; k++) {
      if (conn[k] < 0) conn[k] = connect_to(path[k]);
      away |= conn[k] < 0;
      /* Relays wait in the backlog while their serve is away. */
      pf[1 + 2 * k] = (struct pollfd){.fd = conn[k], .events = POLLIN};
      pf[2 + 2 * k] = (struct pollfd){.fd = conn[k] >= 0 ? lfd[k] : -1, .events = POLLIN};
    }
    poll(pf, (nfds_t)(2 * n + 1), away ? 10 : 200);
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) stop = 1;
    if (orphaned(parent)) stop = 1;
    for (int k = 0; !stop && k < n; k++) {
      if (conn[k] < 0) continue;
      if (pf[1 + 2 * k].revents & (POLLIN | POLLHUP | POLLERR)) {
        char b;
        ssize_t r = recv(conn[k], &b, 1, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          close(conn[k]);
          conn[k] = -1;
          continue;
        }
      }
      if (!(pf[2 + 2 * k].revents & POLLIN)) continue;
      int c = accept4(lfd[k], NULL, NULL, SOCK_CLOEXEC);
      if (c < 0) continue;
      struct pollfd one = {.fd = c, .events = POLLIN};
      int fd = poll(&one, 1, 1000) == 1 ? recv_fd(c) : -1;
      if (fd >= 0 && send_fd(conn[k], fd) != 0) {
        close(conn[k]);
        conn[k] = -1;
      }
      if (fd >= 0) close(fd);
      close(c);
    }
  }
  for (int k = 0; k < n; k++) unlink(sock[k]);
  return 0;
}

/* ---- relay and session: the coordinator side of a request ---- */

typedef struct {
  long index;
  int answered;
} agent_t;

static agent_t *ag;           /* the request's agents (relay), the attempts in flight (session) */
static size_t nag, ag_cap;
static long quarantined;
static pid_t local_kid;       /* our own launcher, when we forked it */

static void ag_add(long index) {
  ag = grow(ag, sizeof(agent_t), nag, &ag_cap, 1024);
  ag[nag++] = (agent_t){.index = index};
}

static void out_line(const char *data, size_t len) {
  if (sizeof(report) - report_len < len + 1) flush_reports();
  if (len + 1 > sizeof(report)) {
    if (write_all(STDOUT_FILENO, data, len) != 0 && !session) die(1, "cannot write reports: %s", strerror(errno));
    return;
  }
  memcpy(report + report_len, data, len);
  report_len += len;
}

static void quarantine(const char *line, size_t len, const char *why) {
  quarantined++;
  if (session || root == NULL) {
    fprintf(stderr, "%s: refused a launcher record (%s): %.80s (%ld so far)\n", prog, why, line, quarantined);
    return;
  }
  char path[PATH_MAX], dir[PATH_MAX / 2];
  snprintf(dir, sizeof(dir), "%s/quarantine", root);
  mkdir(dir, 0700);
  snprintf(path, sizeof(path), "%s/launcher.%ld.%ld", dir, (long)getpid(), quarantined);
  write_file(path, line, len > 65536 ? 65536 : len);
  fprintf(stderr, "%s: quarantined a launcher record (%s): %s (%ld so far)\n", prog, why, path, quarantined);
}

/* Answers for agent ag[pos] with resp (a response line without its \n). */
static void answer(size_t pos, char *json, size_t jlen) {
  char head[96];
  long idx = ag[pos].index;
  ag[pos].answered = 1;
  if (session) {
    int n = snprintf(head, sizeof(head), "W %ld ", idx);
    out_line(head, (size_t)n);
    out_line(json, jlen);
    out_line("\n", 1);
    ag[pos] = ag[--nag];
    return;
  }
  char tag[64];
  snprintf(tag, sizeof(tag), "r%ld", (long)getpid());
  json[jlen] = '\n';
  const char *status = response_publish(root, idx, json, jlen + 1, tag);
  json[jlen] = '\0';
  int n = snprintf(head, sizeof(head), "W %ld %s\n", idx, status);
  out_line(head, (size_t)n);
}

/* Checks one record line (without its \n) and answers with the response in
 * it. *busy: the one agent a slot's request may answer for (-1 once it has;
 * NULL: any agent of the request). */
static void relay_record(char *line, size_t len, int *hello, long *busy) {
  size_t nl = strlen(nonce);
  if (len < nl + 2 || memcmp(line, nonce, nl) != 0 || line[nl] != ' ') {
    quarantine(line, len, "not the request's nonce");
    return;
  }
  char *p = line + nl + 1;
  if (len == nl + 2 && *p == 'H') {
    *hello = 1;
    return;
  }
  if (len < nl + 4 || (p[0] != 'W' && p[0] != 'I') || p[1] != ' ') {
    quarantine(line, len, "not a response record");
    return;
  }
  char kind = p[0];
  p += 2;
  char *end;
  errno = 0;
  long idx = strtol(p, &end, 10);
  size_t pos = nag;
  int shape = end != p && errno == 0 && (kind == 'W' ? *end == ' ' : end == line + len);
  for (size_t i = 0; shape && (busy == NULL || *busy == idx) && i < nag; i++) {
    if (ag[i].index == idx && !ag[i].answered) pos = i;
  }
  if (pos == nag) {
    quarantine(line, len, "an agent not asked for, or answered already");
    return;
  }
  if (busy != NULL) *busy = -1;
  if (kind == 'I') {
    /* An attempt the stop cut short: no answer. */
    if (session) {
      char rec[64];
      int n = snprintf(rec, sizeof(rec), "I %ld\n", idx);
      out_line(rec, (size_t)n);
      ag[pos] = ag[--nag];
    } else {
      /* the trace the coordinator counts it by */
      char path[PATH_MAX];
      snprintf(path, sizeof(path), "%s/work/agent-%ld.%ld.out", root, idx, (long)getpid());
      write_file(path, "", 0);
    }
    return;
  }
  char *json = end + 1;
  size_t jlen = len - (size_t)(json - line);
  char want[128];
  int wl = snprintf(want, sizeof(want), "{\"agentId\":\"agent-%ld\",\"index\":%ld,\"status\":\"", idx, idx);
  const char *status = response_status(json, jlen);
  int ok = status != NULL && jlen > (size_t)wl + 2 && memcmp(json, want, (size_t)wl) == 0 && json[jlen - 1] == '}' &&
           memchr(json, '\n', jlen) == NULL;
  if (ok) {
    const char *code = json + wl + strlen(status) + 1;
    /* completed exactly when the exit code is 0 */
    ok = strncmp(code, ",\"exitCode\":", 12) == 0 && ((strcmp(status, "completed") == 0) == (strncmp(code + 12, "0,", 2) == 0));
  }
  if (!ok) {
    quarantine(line, len, "not a response of that agent");
    return;
  }
  answer(pos, json, jlen);
}

/* Final and failed, saying so: the agents the launcher never answered for
 * (it ended first: killed, or crashed). */
static void launcher_ended(int64_t since, long only) {
  for (size_t i = 0; i < nag; i++) {
    if (ag[i].answered || (only >= 0 && ag[i].index != only)) continue;
    char json[512];
    long idx = ag[i].index;
    int n = snprintf(json, sizeof(json) - 1,
                     "{\"agentId\":\"agent-%ld\",\"index\":%ld,\"status\":\"failed\",\"exitCode\":null,\"attempts\":0,\"durationMs\":%lld,\"output\":\"\","
                     "\"outputBytes\":0,\"outputTruncated\":false,\"error\":\"the launcher ended before agent-%ld's final answer "
                     "(killed or crashed): its exit code is unknown\"}",
                     idx, idx, (long long)((now_us() - since) / 1000), idx);
    fprintf(stderr, "%s: agent-%ld has no answer: the launcher ended first\n", prog, idx);
    answer(i, json, (size_t)n);
    if (session) i--; /* answer() moved the last entry here */
  }
}

/* The longest line a launcher sends: the response's output escaped (6 bytes
 * a byte at most), its error line, the rest. */
static size_t record_max(void) { return (size_t)resp_cfg.max_output * 6 + 65536; }

/* A request to a launcher: through the hub, to serve directly (this process
 * is then serve's one connection: *conn), or to a launcher of our own (forked).
 * Returns our end, -1 when no launcher is there within wait_us. */
static int open_request(int local, int slot, int64_t wait_us, int *conn) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die(1, "socketpair: %s", strerror(errno));
  const char *hub = getenv("CFN_LAUNCHER_HUB"), *chan = getenv("CFN_LAUNCHER_DIR");
  if (!local && hub != NULL && hub[0] != '\0') {
    int c = -1;
    char at[PATH_MAX];
    /* Slot k's requests go to the hub's SOCK.k. */
    if (slot >= 0) snprintf(at, sizeof(at), "%s.%d", hub, slot);
    else snprintf(at, sizeof(at), "%s", hub);
    for (int64_t t0 = now_us(); (c = connect_to(at)) < 0 && now_us() - t0 < wait_us;) usleep(10000);
    if (c < 0 || send_fd(c, sv[1]) != 0) die(1, "no launcher hub at %s (%s)", at, strerror(errno));
    close(c);
  } else if (!local && chan != NULL && chan[0] != '\0') {
    char path[PATH_MAX];
    if (slot >= 0) snprintf(path, sizeof(path), "%s/%d/%s", chan, slot, SOCK_NAME);
    else snprintf(path, sizeof(path), "%s/%s", chan, SOCK_NAME);
    if (*conn >= 0) {
      struct pollfd pf = {.fd = *conn, .events = POLLIN};
      if (poll(&pf, 1, 0) == 1 || send_fd(*conn, sv[1]) != 0) {
        close(*conn); /* serve is gone: its restart listens again */
        *conn = -1;
      }
    }
    for (int64_t t0 = now_us(); *conn < 0 && now_us() - t0 < wait_us; usleep(10000)) {
      if ((*conn = connect_to(path)) >= 0 && send_fd(*conn, sv[1]) != 0) {
        close(*conn);
        *conn = -1;
      }
    }
    if (*conn < 0) {
      close(sv[0]);
      close(sv[1]);
      return -1;
    }
  } else {
    pid_t pid = fork();
    if (pid < 0) die(1, "fork: %s", strerror(errno));
    if (pid == 0) {
      /* Our own launcher: nothing of ours but its end (stdout is the reports'). */
      prog = "launcher";
      int null = open("/dev/null", O_RDWR | O_CLOEXEC);
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      close(sv[0]);
      sigset_t all;
      sigemptyset(&all);
      sigprocmask(SIG_SETMASK, &all, NULL);
      _exit(run_stream(sv[1]));
    }
    local_kid = pid;
  }
  close(sv[1]);
  return sv[0];
}

/* The head of a request: the run's argv (options, nonce, counts, command), the
 * contract variables (the agent side has its own environment), the objective. */
static void request_head(buf_t *out, char **opt, int nopt, char **counts, const char *obj, size_t obj_len) {
  static const char *const contract[] = {"OBJECTIVE_ID", "SWARM_ID", "CFN_AGENTS_TOTAL", "CFN_OBJECTIVE"};
  buf_t b = {0};
  const char *ka = getenv("CFN_KILL_AFTER");
  for (int i = 0; i < nopt; i++) buf_put(&b, opt[i], strlen(opt[i]) + 1);
  if (ka != NULL && ka[0] != '\0') {
    buf_put(&b, "--kill-after", 13);
    buf_put(&b, ka, strlen(ka) + 1);
  }
  buf_put(&b, "--records", 10);
  buf_put(&b, nonce, strlen(nonce) + 1);
  for (int i = 0; counts[i] != NULL; i++) buf_put(&b, counts[i], strlen(counts[i]) + 1);
  frame_put(out, F_ARGV, b.data, b.len);
  b.len = 0;
  for (size_t i = 0; i < sizeof(contract) / sizeof(contract[0]); i++) {
    const char *v = getenv(contract[i]);
    if (v == NULL) continue;
    buf_put(&b, contract[i], strlen(contract[i]));
    buf_put(&b, "=", 1);
    buf_put(&b, v, strlen(v) + 1);
  }
  frame_put(out, F_ENV, b.data ? b.data : "", b.len);
  frame_put(out, F_OBJ, obj ? obj : "", obj_len);
  free(b.data);
}

/* The F_RUN frame of agent INDEX (relay): its task from ROOT/tasks (else the
 * objective), its variables from ROOT/task-env; both are read here, where
 * only the coordinator reaches. */
static void relay_run_frame(buf_t *out, long index) {
  char path[PATH_MAX], head[128];
  size_t tlen = 0, elen = 0;
  struct stat st;
  snprintf(path, sizeof(path), "%s/tasks/%ld", root, index);
  char *task = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? read_all(path, &tlen) : NULL;
  snprintf(path, sizeof(path), "%s/task-env/%ld", root, index);
  char *env = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? read_all(path, &elen) : NULL;
  int n = snprintf(head, sizeof(head), "%ld 1 %d %zu\n", index, task != NULL, elen);
  buf_t b = {0};
  buf_put(&b, head, (size_t)n);
  if (env) buf_put(&b, env, elen);
  if (task) buf_put(&b, task, tlen);
  frame_put(out, F_RUN, b.data, b.len);
  free(b.data);
  free(task);
  free(env);
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

/* A request to a launcher, as the coordinator side holds it. */
typedef struct {
  int fd;            /* our end; -1 while none is open */
  int conn;          /* serve's one connection when this process is it */
  buf_t out;         /* frames not sent yet */
  size_t out_off;
  char *buf;         /* records not whole yet */
  size_t have, cap;
  int hello, shut;
  int64_t t0;
  long busy;         /* a slot's request: the agent it runs, -1 none */
} req_t;

/* A session's attempt waiting for a free slot: its F_RUN payload. */
typedef struct {
  long index;
  char *run;
  uint32_t len;
} queued_t;

/* The next agent for a free slot: its F_RUN frame into out; its index. */
static long next_agent(buf_t *out, long *queue, size_t *sent, queued_t *q, size_t *qhead) {
  if (queue != NULL) {
    long idx = queue[(*sent)++];
    relay_run_frame(out, idx);
    return idx;
  }
  queued_t *a = &q[(*qhead)++];
  frame_put(out, F_RUN, a->run, a->len);
  free(a->run);
  return a->index;
}

/* relay, spawn (local) and session: MODE 'r', 's', 'S'. With
 * CFN_LAUNCHER_SLOTS=N (and a hub or a channel), the agents' side is N slots,
 * each serving one agent at a time (serve --slot, CHAN/k): one request per
 * slot, each given its next agent only once the last one is answered. */
static int relay_main(int argc, char **argv, int mode) {
  const char *chan = getenv("CFN_LAUNCHER_DIR"), *hub = getenv("CFN_LAUNCHER_HUB"), *ns = getenv("CFN_LAUNCHER_SLOTS");
  int local = mode == 's';
  session = mode == 'S';
  if (!local && chan != NULL && chan[0] != '\0' && (chan[0] != '/' || strlen(chan) > 1024))
    die(2, "%s: CFN_LAUNCHER_DIR must be the launcher's channel directory (an absolute path)", prog);
  long long nslots = 0;
  int remote = !local && ((hub != NULL && hub[0] != '\0') || (chan != NULL && chan[0] != '\0'));
  if (remote && ns != NULL && ns[0] != '\0' && parse_num(ns, 1, SLOTS_MAX, &nslots) != 0)
    die(2, "%s: CFN_LAUNCHER_SLOTS must be a slot count (1-%d)", prog, SLOTS_MAX);
  int k = parse_options(argc, argv);
  if (nonce != NULL) die(2, "--records is the launcher's");
  char **opt = argv;
  argv += k;
  argc -= k;
  long *queue = NULL;
  size_t nq = 0, sent = 0;
  queued_t *held = NULL;   /* session with slots: attempts waiting for one */
  size_t nheld = 0, held_head = 0, held_cap = 0;
  char *obj = NULL;
  size_t obj_len = 0;
  if (!session) {
    if (argc < 7) die(2, "usage: see --help");
    root = argv[0];
    parse_counts(argc - 2, argv + 2);
    queue = read_queue(argv[1], &nq);
    for (size_t i = 0; i < nq; i++) ag_add(queue[i]);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/objective.txt", root);
    obj = read_all(path, &obj_len);
    argv += 2;
  } else {
    parse_counts(argc, argv);
    /* The objective: the frame before any attempt's. */
  }
  char **counts = argv;
  /* No more slots at once than the run's concurrency. */
  int slots = nslots > concurrency ? concurrency : (int)nslots, nreq = slots > 0 ? slots : 1;
  unsigned char rnd[16];
  static char hex[33];
  if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) die(1, "getrandom: %s", strerror(errno));
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  nonce = hex;
  umask(007);
  signal(SIGPIPE, SIG_IGN);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGCHLD);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  const char *w = getenv("CFN_LAUNCHER_WAIT");
  int64_t wait_us = w != NULL && parse_seconds(w) >= 0 ? parse_seconds(w) : 30000000;
  pid_t parent = getppid();
  frames_t in = {0};        /* session: frames from stdin */
  int in_eof = !session, have_obj = !session;
  if (session) fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
  int stop = 0, opened = 0;
  int64_t stop_at = 0;
  size_t max = record_max();
  req_t *rq = calloc((size_t)nreq, sizeof(req_t));
  struct pollfd *pf = xmalloc(sizeof(struct pollfd) * (size_t)(nreq + 2));
  if (rq == NULL) die(1, "out of memory");
  for (int r = 0; r < nreq; r++) {
    rq[r] = (req_t){.fd = -1, .conn = -1, .busy = -1, .cap = 1 << 16};
    rq[r].buf = xmalloc(rq[r].cap + 1);
  }
  const char *no_launcher = "no launcher took the agents' request within %.1fs (is `launcher serve %s` running?)";
#define OPEN_REQ(r, slot)                                                                                   \
  do {                                                                                                     \
    if (((r)->fd = open_request(local, (slot), wait_us, &(r)->conn)) < 0) die(1, no_launcher, (double)wait_us / 1e6, chan); \
    (r)->out.len = (r)->out_off = (r)->have = 0;                                                           \
    (r)->hello = (r)->shut = 0;                                                                            \
    (r)->t0 = now_us();                                                                                    \
    request_head(&(r)->out, opt, k, counts, obj, obj_len);                                                 \
    opened = 1;                                                                                            \
  } while (0)
  for (;;) {
    size_t backlog = 0;
    for (int r = 0; r < nreq; r++) backlog += rq[r].out.len - rq[r].out_off;
    if (session && !in_eof && backlog < (1 << 20)) {
      char *p;
      uint32_t len;
      int t;
      frames_fill(&in, STDIN_FILENO, 0);
      while ((t = frame_next(&in, &p, &len)) != 0) {
        if (t == F_OBJ && !have_obj) {
          obj = dup_bytes(p, len);
          obj_len = len;
          have_obj = 1;
          continue;
        }
        if (!have_obj) die(1, "session: the objective comes first");
        long long idx = -1;
        if (t == F_RUN || (t == F_STOP && len > 0)) {
          char num[16];
          const char *sp = t == F_RUN ? memchr(p, ' ', len < 16 ? len : 16) : p + len;
          if (sp == NULL || sp - p >= (long)sizeof(num)) die(1, "session: a frame without an index");
          memcpy(num, p, (size_t)(sp - p));
          num[sp - p] = '\0';
          if (parse_num(num, 0, INDEX_MAX, &idx)) die(1, "session: a frame without an index");
        }
        if (t == F_RUN) ag_add((long)idx);
        if (slots == 0) {
          /* A request for the attempts to come: the first, or one after the launcher ended. */
          if (rq[0].fd < 0) OPEN_REQ(&rq[0], -1);
          frame_put(&rq[0].out, t, p, len);
        } else if (t == F_RUN) {
          held = queue_room(held, sizeof(queued_t), &nheld, &held_head, &held_cap, 64);
          held[nheld++] = (queued_t){.index = (long)idx, .run = dup_bytes(p, len), .len = len};
        } else if (t == F_STOP && idx >= 0) {
          /* Held here: it never started (I INDEX); on a slot: that slot stops it. */
          int found = 0;
          for (size_t i = held_head; i < nheld && !found; i++) {
            if (held[i].index != idx) continue;
            found = 1;
            free(held[i].run);
            memmove(held + i, held + i + 1, (nheld - i - 1) * sizeof(queued_t));
            nheld--;
            for (size_t a = 0; a < nag; a++) {
              if (ag[a].index == idx && !ag[a].answered) {
                ag[a] = ag[--nag];
                break;
              }
            }
            char rec[64];
            int n = snprintf(rec, sizeof(rec), "I %lld\n", idx);
            out_line(rec, (size_t)n);
          }
          for (int r = 0; r < nreq && !found; r++) {
            if (rq[r].fd >= 0 && rq[r].busy == idx) frame_put(&rq[r].out, t, p, len);
          }
        }
      }
      if (in.eof) in_eof = 1;
    }
    /* relay: one request (its agents' frames as the launcher takes them), or
     * one per slot, each given its next agent when it has none */
    if (slots == 0 && !session && rq[0].fd < 0 && !opened) OPEN_REQ(&rq[0], -1);
    while (slots == 0 && !session && rq[0].fd >= 0 && !stop && sent < nq && rq[0].out.len - rq[0].out_off < (1 << 16)) relay_run_frame(&rq[0].out, queue[sent++]);
    for (int r = 0; slots > 0 && !stop && r < nreq; r++) {
      if (rq[r].busy >= 0 || (session ? held_head == nheld : sent == nq)) continue;
      if (rq[r].fd < 0) OPEN_REQ(&rq[r], r);
      rq[r].busy = next_agent(&rq[r].out, session ? NULL : queue, &sent, held, &held_head);
    }
    int more = session ? !in_eof || held_head < nheld : sent < nq;
    for (int r = 0; r < nreq; r++) {
      if (rq[r].fd >= 0 && !rq[r].shut && !stop && !more && (slots == 0 || rq[r].busy < 0)) {
        frame_put(&rq[r].out, F_END, "", 0);
        rq[r].shut = 1;
      }
    }
    int open = 0, waiting = 0;
    for (int r = 0; r < nreq; r++) {
      open += rq[r].fd >= 0;
      waiting |= rq[r].fd >= 0 && !rq[r].hello;
    }
    if (open == 0 && (stop || (session ? !more : opened && (slots == 0 || sent == nq)))) break;
    int npf = 0;
    pf[npf++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (int r = 0; r < nreq; r++) {
      pf[npf++] = (struct pollfd){.fd = rq[r].fd, .events = POLLIN | (rq[r].out_off < rq[r].out.len ? POLLOUT : 0)};
    }
    if (session && !in_eof && backlog < (1 << 20)) pf[npf++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    flush_reports();
    poll(pf, (nfds_t)npf, waiting ? 5 : 200);
    struct signalfd_siginfo si;
    /* The dispatcher gone (killed) stops a relay; a session's agents run on. */
    int orphan = !session && getppid() != parent;
    while (orphan || read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
      if (!orphan && si.ssi_signo == SIGCHLD) continue;
      orphan = 0;
      if (stop) continue;
      /* The dispatcher stops us (or is gone): the launcher stops the agents. */
      stop = 1;
      stop_at = now_us() + kill_after_us + 5000000;
      for (int r = 0; r < nreq; r++) {
        if (rq[r].fd >= 0) frame_put(&rq[r].out, F_STOP, "", 0);
      }
    }
    if (local_kid > 0) waitpid(local_kid, NULL, WNOHANG);
    for (int r = 0; r < nreq; r++) {
      req_t *q = &rq[r];
      if (q->fd < 0) continue;
      while (q->out_off < q->out.len) {
        ssize_t wr = send(q->fd, q->out.data + q->out_off, q->out.len - q->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (wr < 0 && errno == EINTR) continue;
        if (wr <= 0) break;
        q->out_off += (size_t)wr;
      }
      if (q->out_off == q->out.len) q->out.len = q->out_off = 0;
      int eof = 0;
      for (;;) {
        if (q->have == q->cap) {
          if (q->cap > max * 2) {
            quarantine(q->buf, q->have, "a line longer than any response");
            q->have = 0;
          } else {
            q->cap *= 2;
            q->buf = realloc(q->buf, q->cap + 1);
            if (q->buf == NULL) die(1, "out of memory");
          }
        }
        ssize_t got = recv(q->fd, q->buf + q->have, q->cap - q->have, MSG_DONTWAIT);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN) break;
        if (got <= 0) {
          eof = 1;
          break;
        }
        q->have += (size_t)got;
        char *s = q->buf, *e;
        while ((e = memchr(s, '\n', q->have - (size_t)(s - q->buf))) != NULL) {
          relay_record(s, (size_t)(e - s), &q->hello, slots > 0 ? &q->busy : NULL);
          s = e + 1;
        }
        q->have -= (size_t)(s - q->buf);
        memmove(q->buf, s, q->have);
      }
      if (!q->hello && !eof && now_us() - q->t0 > wait_us) die(1, no_launcher, (double)wait_us / 1e6, chan);
      if (!eof && !(stop && now_us() > stop_at)) continue;
      if (q->have > 0) quarantine(q->buf, q->have, "a record cut short");
      q->have = 0;
      close(q->fd);
      q->fd = -1;
      if (local_kid > 0) {
        if (stop && !eof) kill(local_kid, SIGKILL);
        waitpid(local_kid, NULL, 0);
        local_kid = 0;
      }
      /* stopped: no answer, nothing final */
      if (stop) continue;
      /* The launcher ended: its agents without an answer failed, saying so. */
      if (slots > 0) {
        if (q->busy >= 0) launcher_ended(q->t0, q->busy);
        q->busy = -1;
      } else {
        launcher_ended(q->t0, -1);
        if (session) nag = 0;
      }
    }
    if (slots == 0 && !session && rq[0].fd < 0 && opened) break;
  }
#undef OPEN_REQ
  flush_reports();
  for (int r = 0; r < nreq; r++) {
    if (rq[r].conn >= 0) close(rq[r].conn);
  }
  return stop ? 143 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "serve") == 0) return serve_main(argc - 2, argv + 2);
  if (strcmp(argv[1], "hub") == 0) {
    prog = "launcher hub";
    return hub_main(argc - 2, argv + 2);
  }
  if (strcmp(argv[1], "relay") == 0) {
    prog = "launcher relay";
    return relay_main(argc - 2, argv + 2, 'r');
  }
  if (strcmp(argv[1], "session") == 0) {
    prog = "launcher session";
    return relay_main(argc - 2, argv + 2, 'S');
  }
  if (strcmp(argv[1], "spawn") == 0) return relay_main(argc - 2, argv + 2, 's');
  die(2, "unknown command %s (see --help)", argv[1]);
}
