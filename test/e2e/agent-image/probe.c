/*
 * The only program of the e2e agent image (test/e2e/agent-image/build.sh): a
 * static binary, no shell, no libc in the image. It is an agent:
 *   probe marker        prints /only-here.txt (a file only this image has)
 *   probe hostile       tries what an agent must not be able to do and
 *                       prints one line per try: "<what>: denied (<why>)" or
 *                       "<what>: ALLOWED"; exits 0
 *   probe kill-launcher agent 0 kills every process it can (the launcher
 *                       among them) after 2 s; the others sleep 60 s
 *   probe tasks         prints its task and any other agent's task ("secret-task-N")
 *                       it finds in /proc or the channel
 *   probe siblings      (isolation container) while its siblings run in the
 *                       other slots: what it finds of them (their tasks in
 *                       /proc, the processes of an agent before it, files in
 *                       /tmp and /workspace, the other slots' channels), what
 *                       it can write there; then leaves files and a
 *                       background process that looks for the next agent's task
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void try_open(const char *what, const char *path, int flags) {
  int fd = open(path, flags, 0644);
  if (fd < 0) {
    printf("%s: denied (%s)\n", what, strerror(errno));
  } else {
    printf("%s: ALLOWED\n", what);
    close(fd);
  }
}

static int marker(void) {
  char buf[256];
  int fd = open("/only-here.txt", O_RDONLY);
  if (fd < 0) return 1;
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return 1;
  fwrite(buf, 1, (size_t)n, stdout);
  return 0;
}

static int hostile(void) {
  char path[512];
  const char *swarm = getenv("SWARM_ID");
  printf("uid: %s\n", getuid() == 65532 ? "the coordinator's" : "not the coordinator's");
  try_open("read the pod's ServiceAccount token", "/var/run/secrets/kubernetes.io/serviceaccount/token", O_RDONLY);
  try_open("read any projected token", "/var/run/secrets/tokens/token", O_RDONLY);
  try_open("read the coordinator's tmpfs", "/dev/shm/cfn", O_RDONLY | O_DIRECTORY);
  snprintf(path, sizeof(path), "/dev/shm/cfn/%s/status.json", swarm ? swarm : "x");
  try_open("write status.json", path, O_WRONLY | O_CREAT | O_TRUNC);
  snprintf(path, sizeof(path), "/dev/shm/cfn/%s/messages/root/new/forged.json", swarm ? swarm : "x");
  try_open("write the bus", path, O_WRONLY | O_CREAT);
  snprintf(path, sizeof(path), "/dev/shm/cfn/%s/responses/agent-1.json", swarm ? swarm : "x");
  try_open("write another agent's response", path, O_WRONLY | O_CREAT);
  try_open("write the results volume", "/results/forged.json", O_WRONLY | O_CREAT);
  try_open("replace the launcher", "/cfn/bin/launcher", O_WRONLY | O_TRUNC);
  /* The channel: the launcher's socket name is gone once the coordinator is connected, and no
   * request, task or output has a path there. */
  DIR *chan = opendir("/cfn/launch");
  int entries = 0;
  struct dirent *ce;
  while (chan != NULL && (ce = readdir(chan)) != NULL) entries += ce->d_name[0] != '.';
  if (chan != NULL) closedir(chan);
  if (entries > 0) printf("find anything in the channel: ALLOWED\n");
  else printf("find anything in the channel: denied (%s)\n", chan == NULL ? strerror(errno) : "nothing there");
  /* The launcher (PID 1) and its request process (our parent) are not dumpable. */
  pid_t launchers[2] = {getppid(), 1};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)launchers[i]);
    DIR *fds = opendir(path);
    if (fds != NULL) {
      printf("read the launcher's descriptors: ALLOWED\n");
      closedir(fds);
    } else {
      printf("read the launcher's descriptors: denied (%s)\n", strerror(errno));
    }
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)launchers[i]);
    try_open("read the launcher's environment", path, O_RDONLY);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)launchers[i]);
    try_open("read the launcher's memory", path, O_RDONLY);
  }
  /* Processes it can see: the coordinator is not among them, so it cannot be signalled. */
  DIR *d = opendir("/proc");
  struct dirent *e;
  int coordinator = 0;
  while (d != NULL && (e = readdir(d)) != NULL) {
    char comm[64] = "";
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t n = read(fd, comm, sizeof(comm) - 1);
    close(fd);
    if (n > 0) comm[n] = '\0';
    if (strncmp(comm, "node", 4) == 0 || strncmp(comm, "bash", 4) == 0 || strncmp(comm, "cfn", 3) == 0) coordinator = 1;
  }
  if (d != NULL) closedir(d);
  printf("see the coordinator's processes to signal them: %s\n", coordinator ? "ALLOWED" : "denied (not in this container)");
  return 0;
}

/* Appends to found (once each) every "secret-task-N" in data that is not mine. */
static void scan(const char *data, size_t n, const char *mine, char *found, size_t cap) {
  const char *key = "secret-task-";
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl < n; i++) {
    if (memcmp(data + i, key, kl) != 0) continue;
    size_t j = i + kl;
    while (j < n && data[j] >= '0' && data[j] <= '9') j++;
    char one[64];
    snprintf(one, sizeof(one), "%.*s", (int)(j - i), data + i);
    if (strcmp(one, mine) != 0 && strstr(found, one) == NULL && strlen(found) + strlen(one) + 2 < cap) {
      strcat(found, " ");
      strcat(found, one);
    }
  }
}

static void scan_file(const char *path, const char *mine, char *found, size_t cap) {
  static char buf[1 << 16];
  int fd = open(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n > 0) scan(buf, (size_t)n, mine, found, cap);
}

/* Looks for the other agents' tasks wherever it can read: the processes it
 * can see (environment, command line, the files they hold open) and the
 * channel. With concurrency 1 the others are queued or answered. */
static int tasks(void) {
  char mine[64] = "", found[4096] = "", path[512];
  ssize_t n = read(0, mine, sizeof(mine) - 1);
  if (n > 0) mine[n] = '\0';
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
    scan_file(path, mine, found, sizeof(found));
    snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
    scan_file(path, mine, found, sizeof(found));
    snprintf(path, sizeof(path), "/proc/%s/fd", e->d_name);
    DIR *fds = opendir(path);
    struct dirent *f;
    while (fds != NULL && (f = readdir(fds)) != NULL) {
      struct stat st;
      char fp[800];
      snprintf(fp, sizeof(fp), "%s/%s", path, f->d_name);
      if (f->d_name[0] != '.' && stat(fp, &st) == 0 && S_ISREG(st.st_mode)) scan_file(fp, mine, found, sizeof(found));
    }
    if (fds != NULL) closedir(fds);
  }
  if (d != NULL) closedir(d);
  DIR *chan = opendir("/cfn/launch");
  while (chan != NULL && (e = readdir(chan)) != NULL) {
    snprintf(path, sizeof(path), "/cfn/launch/%s", e->d_name);
    if (e->d_name[0] != '.') scan_file(path, mine, found, sizeof(found));
  }
  if (chan != NULL) closedir(chan);
  printf("my task: %s\n", mine);
  printf("another agent's task:%s\n", found[0] ? found : " none");
  return 0;
}

/* Every other agent's task it can read in /proc (environment, command line,
 * files held open), into found. */
static void scan_proc(const char *mine, char *found, size_t cap) {
  char path[512];
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
    scan_file(path, mine, found, cap);
    snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
    scan_file(path, mine, found, cap);
    snprintf(path, sizeof(path), "/proc/%s/fd", e->d_name);
    DIR *fds = opendir(path);
    struct dirent *f;
    while (fds != NULL && (f = readdir(fds)) != NULL) {
      struct stat st;
      char fp[800];
      snprintf(fp, sizeof(fp), "%s/%s", path, f->d_name);
      if (f->d_name[0] != '.' && stat(fp, &st) == 0 && S_ISREG(st.st_mode)) scan_file(fp, mine, found, cap);
    }
    if (fds != NULL) closedir(fds);
  }
  if (d != NULL) closedir(d);
}

/* Entries of dir (none: -1 when it cannot be opened). */
static int entries(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static int siblings(void) {
  char mine[64] = "", found[4096] = "";
  ssize_t n = read(0, mine, sizeof(mine) - 1);
  if (n > 0) mine[n] = '\0';
  printf("my task: %s\n", mine);
  printf("uid: %d\n", (int)getuid());
  /* What an agent before it in this slot left: files, processes. */
  printf("fresh /tmp: %s\n", entries("/tmp") == 0 ? "yes" : "no");
  printf("fresh /workspace: %s\n", entries("/workspace") == 0 ? "yes" : "no");
  int others = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    pid_t p = (pid_t)atoi(e->d_name);
    if (p != 1 && p != getppid() && p != getpid()) others++;
  }
  if (d != NULL) closedir(d);
  printf("processes besides the launcher and me: %d\n", others);
  /* The other slots: their channels, /tmp and /workspace are not mounted here. */
  printf("other slots' channels: %s\n", entries("/cfn/slots") < 0 && entries("/cfn/launch") <= 0 ? "none" : "FOUND");
  /* Its siblings run in the other slots now: look for their tasks for a while. */
  for (int i = 0; i < 20; i++) {
    scan_proc(mine, found, sizeof(found));
    usleep(50000);
  }
  /* Leave files, and a process that looks for the next agent's task. */
  int fd = open("/tmp/left-behind", O_WRONLY | O_CREAT, 0644);
  if (fd >= 0) close(fd);
  mkdir("/workspace/left", 0755);
  mkdir("/workspace/left/behind", 0);
  pid_t kid = fork();
  if (kid == 0) {
    setsid();
    if (fork() != 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    /* The next agent of this slot finds it alive (or not) in /proc. */
    char seen[4096] = "";
    for (int i = 0; i < 600; i++) {
      scan_proc(mine, seen, sizeof(seen));
      usleep(100000);
    }
    _exit(0);
  }
  if (kid > 0) waitpid(kid, NULL, 0);
  printf("another agent's task:%s\n", found[0] ? found : " none");
  return 0;
}

static int kill_launcher(void) {
  const char *i = getenv("AGENT_INDEX");
  if (i == NULL || strcmp(i, "0") != 0) {
    sleep(60);
    return 0;
  }
  sleep(2);
  kill(-1, SIGKILL);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "marker") == 0) return marker();
  if (argc > 1 && strcmp(argv[1], "hostile") == 0) return hostile();
  if (argc > 1 && strcmp(argv[1], "kill-launcher") == 0) return kill_launcher();
  if (argc > 1 && strcmp(argv[1], "tasks") == 0) return tasks();
  if (argc > 1 && strcmp(argv[1], "siblings") == 0) return siblings();
  fputs("usage: probe marker|hostile|kill-launcher|tasks|siblings\n", stderr);
  return 2;
}
