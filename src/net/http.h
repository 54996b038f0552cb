/* http.h - the HTTP/1.1 layer of the cluster: a token-checking server (libmicrohttpd) and a
 * small client (libcurl). Control messages are JSON bodies; shuffle data is streamed. Both
 * libraries are loaded (dlopen) when first used, so processes that never serve or request,
 * such as `tally run` and its executors, start without them.
 *
 * Every request must carry the token, as `Authorization: Bearer <token>` or, for a browser, as
 * the cookie HTTP_TOKEN_COOKIE set by POST /v1/login; the server compares it in constant time
 * and answers 401 without calling the handler otherwise. The exceptions, which carry no data
 * and reach the handler with `authorized` 0, are the public paths: "/" and "/ui/..." (the
 * status page's static files), GET /healthz and /readyz (probes), and the server's own
 * POST /v1/login (body: the token; answers 204 with the cookie, HttpOnly and SameSite=Strict,
 * or 401) and POST /v1/logout (clears it). Request bodies above the server's cap get 413
 * without calling the handler. Handlers run on libmicrohttpd's threads (thread-per-connection);
 * they must not block for long.
 */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* ---- Server ------------------------------------------------------------------------------ */

typedef struct http_server http_server;

typedef struct http_request {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* "/v1/jobs/j3", without the query string */
    const char *body;        /* NUL-terminated request body (may be empty, never NULL) */
    size_t body_len;
    const char *remote;      /* "127.0.0.1:53422" */
    int authorized;          /* the request carried the token (always so outside public paths) */
    void *conn;              /* private: for http_request_query() */
} http_request;

/* The cookie a browser keeps the token in after POST /v1/login. */
#define HTTP_TOKEN_COOKIE "tally_token"
/* 1 for the paths served without the token (see above). */
int http_public_path(const char *method, const char *path);

/* Returns the value of query parameter `name`, or NULL. Valid during the handler call. */
const char *http_request_query(const http_request *req, const char *name);

/* What a handler answers: either a body in memory or a byte range of a file streamed without
 * loading it (the server opens it). The server takes ownership of `body` and `file_path` (both
 * malloc'd) when the handler returns; handlers must not free them. */
typedef struct http_response {
    int status;              /* 200, 400, 404, ... */
    const char *content_type;/* default "application/json" */
    char *body;              /* malloc'd, owned by the server after return; may be NULL */
    size_t body_len;
    char *file_path;         /* if set: stream [file_offset, file_offset+file_length) of it; malloc'd, server frees */
    uint64_t file_offset, file_length;
    /* Extra response headers (names and values without CR/LF), e.g. what a streamed file is. */
    struct {
        const char *name;
        char value[512];
    } headers[4];
    int nheaders;
} http_response;

/* Handler: fill *resp. Called only for authenticated requests with bodies within the cap. */
typedef void (*http_handler)(void *arg, const http_request *req, http_response *resp);

/* Starts a server on host:port (port 0 picks a free one; http_server_port() tells which).
 * `token` is copied. Returns 0 or a negative code with a message. */
int http_server_start(http_server **out, const char *host, uint16_t port, const char *token,
                      size_t max_body, http_handler handler, void *arg, struct err *e);
uint16_t http_server_port(const http_server *s);
void http_server_stop(http_server *s);

/* Helpers for handlers: set a JSON body from a printf format, or {"error": msg}. */
void http_respond_json(http_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_respond_error(http_response *resp, int status, const char *msg);

/* Finishes a Prometheus /metrics answer: appends the process metrics (CPU time, peak RSS)
 * of this process, `who` naming it in the help text, and hands `body` to resp (taking it). */
void http_respond_metrics(http_response *resp, struct buf *body, const char *who);

/* ---- Client ------------------------------------------------------------------------------ */

/* Performs one request to http://host:port/path with the bearer token and an optional body
 * (JSON). On success returns 0 with the HTTP status in *status and the response body in
 * *out (malloc'd, NUL-terminated; caller frees); a transport failure (refused, timeout) is a
 * negative code with a message. timeout_ms bounds the whole request. */
int http_call(const char *address, const char *method, const char *path, const char *token,
              const char *body, long timeout_ms, int *status, char **out, struct err *e);

/* A response header to capture: set `name`; after the call `found` says whether it came and
 * `value` holds it (truncated to fit). */
typedef struct http_header {
    const char *name;
    char value[64];
    int found;
} http_header;

/* Streams GET http://address/path into the file `dest` (created/truncated) without holding it
 * in memory, capturing the `nwant` headers of `want` (may be NULL). timeout_ms bounds
 * connecting and any stall of the transfer (under one byte a second for that long), not its
 * whole length. Returns 0 when the status is
 * 200 and the body was fully written; else a negative code (the status, if any, in *status)
 * with a message. *bytes (may be NULL) receives the body's length; *local (may be NULL) is set
 * to 1 when the failure was creating or writing dest rather than the transfer. */
int http_download(const char *address, const char *path, const char *token, const char *dest,
                  long timeout_ms, http_header *want, size_t nwant, int *status, uint64_t *bytes,
                  int *local, struct err *e);

/* Reads a token file: the first line, trailing whitespace removed. Refuses an empty token. */
int http_read_token_file(const char *path, char **token, struct err *e);

/* Constant-time comparison of two NUL-terminated strings (length leaks, contents do not). */
int http_token_equal(const char *a, const char *b);

#endif
