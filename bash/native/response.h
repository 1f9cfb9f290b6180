/* Agent responses written by the native spawner (spawner --responses): the
 * same file, bytes and publish-once rule as cfn__agent_finish in
 * bash/lib/agent.sh, without bash's ~0.6 ms per agent. */
#ifndef CFN_RESPONSE_H
#define CFN_RESPONSE_H

#include <stddef.h>

typedef struct {
  char *data;
  size_t len, cap;
} buf_t;

void buf_put(buf_t *b, const char *s, size_t n);

/* Appends s[0..n) as a JSON string the way `jq -Rs .` (jq 1.6) writes input
 * without NUL bytes or lines over 4095 bytes: each invalid UTF-8 sequence
 * (jq's rule) becomes U+FFFD; '"' and '\' are escaped; control characters
 * and DEL are \b \t \n \f \r or \u00xx; everything else is kept as is. */
void json_string(buf_t *b, const unsigned char *s, size_t n);

typedef struct {
  const char *root;
  long long max_output;      /* --max-output: stdout bytes kept */
  const char *timeout_text;  /* --agent-timeout as given: "timed out after <it>s" */
} response_cfg_t;

/* Writes agent INDEX's response from its final attempt's files
 * (work/agent-INDEX.SPAWNER_PID.{out,err}, removed afterwards) and publishes
 * it once as responses/agent-INDEX.json. Returns the status on disk,
 * "completed" or "failed" (a response already there wins, as in bash). */
const char *response_write(const response_cfg_t *cfg, long index, long spawner_pid, int rc, int attempts,
                           long long duration_ms, int timed_out);

#endif
