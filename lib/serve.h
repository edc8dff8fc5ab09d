/* serve: the request/response protocol of citer-llm --serve (see SERVE PROTOCOL in citer-llm(1)).
 * REQUEST records come in, exactly one RESPONSE record goes out per request, flushed at once,
 * so a router can drive the model as a coprocess over a pipe or ssh. */
#ifndef CITER_SERVE_H
#define CITER_SERVE_H

#include <stdio.h>

#include "engine_cli.h"

/* Serve requests read from in (named in_name in messages) until the end of input.
 * Returns 0 after a clean end (END record, then EOF), -1 with citer_error() ("byte N: ...")
 * when the request stream is corrupt or truncated or the output cannot be written. Bad
 * requests are answered with {"error": ...} and do not end the server. */
int citer_serve(const citer_engine *e, FILE *in, const char *in_name, FILE *out);

#endif
