/* Agent responses (docs/agent-contract.md "The response"): the one encoder of
 * an agent's exit, stdout and stderr, for V2 and V1 alike, used by the
 * launcher (bash/native/launcher.c). */
#ifndef CFN_RESPONSE_H
#define CFN_RESPONSE_H

#include <stddef.h>

typedef struct {
  char *data;
  size_t len, cap;
} buf_t;

void buf_put(buf_t *b, const char *s, size_t n);

/* Appends s[0..n) as a JSON string: each invalid UTF-8 sequence becomes
 * U+FFFD (decoded per line or 4095-byte piece); '"' and '\' are escaped;
 * control characters and DEL are \b \t \n \f \r or \u00xx; everything else
 * is kept as is. */
void json_string(buf_t *b, const unsigned char *s, size_t n);

typedef struct {
  long long max_output;      /* --max-output: stdout bytes kept */
  const char *timeout_text;  /* --agent-timeout as given: "timed out after <it>s" */
} response_cfg_t;

/* Appends to resp the response line (ended by \n) of agent INDEX's final
 * attempt from its stdout OUT and stderr ERR (open files; -1: none). */
void response_build(const response_cfg_t *cfg, long index, int out, int err, int rc, int attempts,
                    long long duration_ms, int timed_out, buf_t *resp);

/* "completed" or "failed" from a response's first bytes, NULL when they are
 * not a response's. */
const char *response_status(const char *head, size_t len);

/* Publishes data as ROOT/responses/agent-INDEX.json once (staged in
 * responses/.tmp/ under TAG). Returns the status on disk: a response already
 * there wins. */
const char *response_publish(const char *root, long index, const char *data, size_t len, const char *tag);

#endif
