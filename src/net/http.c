/* http.c - the cluster's HTTP/1.1 layer: a bearer-token server on libmicrohttpd, a libcurl client. */
#include "net/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* An idle connection is dropped after this long, so a client that opens a socket and then goes
 * quiet (slowloris) holds a thread for at most this many seconds. */
#define HTTP_CONN_TIMEOUT_S 30u
/* Each connection costs a thread; this bounds how many a flood of clients can make us spawn. */
#define HTTP_CONN_LIMIT 256u
/* After a body has overflowed the cap we keep reading (and dropping) it so that the client gets a
 * clean 413 instead of a reset; past this much excess we stop being polite and close. */
#define HTTP_DRAIN_LIMIT (16u << 20)
/* http_call() holds the response in memory; anything bigger must use http_download(). */
#define HTTP_MAX_RESPONSE ((size_t)64 << 20)
/* How much of an error body http_download() keeps for its message. */
#define HTTP_ERRBODY_MAX 512u
/* 413 has had three names across libmicrohttpd versions, each deprecating the last. */
#define HTTP_STATUS_TOO_LARGE 413

/* ---- JSON bodies ---------------------------------------------------------------------------- */

/* Appends s as a JSON string literal. Bytes >= 0x80 pass through: the messages are ours (ASCII
 * in practice) and a stray byte must not make us drop the whole message. */
static void http_json_quote(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)*p);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_appendf(b, "\\u%04x", *p);
        } else {
            buf_putc(b, (char)*p);
        }
    }
    buf_putc(b, '"');
}

void http_respond_json(http_response *resp, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = NULL;
    int n = vasprintf(&body, fmt, ap);
    va_end(ap);
    if (n < 0) {
        /* vasprintf fails only when out of memory; match the xmalloc policy. */
        fprintf(stderr, "tally: out of memory formatting a response\n");
        abort();
    }
    free(resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = body;
    resp->body_len = (size_t)n;
}

void http_respond_error(http_response *resp, int status, const char *msg)
{
    struct buf b = {0};
    buf_append(&b, "{\"error\": ", 10);
    http_json_quote(&b, msg ? msg : "");
    buf_putc(&b, '}');
    free(resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = b.data;
    resp->body_len = b.len;
}

/* ---- Token handling ------------------------------------------------------------------------- */

int http_token_equal(const char *a, const char *b)
{
    if (!a || !b) return 0;
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la > lb ? la : lb;
    /* Walk the longer length whatever the contents, and only ever branch on lengths, so the time
     * taken says nothing about how many leading bytes matched. volatile keeps the compiler from
     * turning the accumulation into an early exit. */
    volatile unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(ca ^ cb);
    }
    return diff == 0;
}

/* A token goes verbatim into a header line; control bytes (CR, LF above all) would split it. */
static int http_token_printable(const char *t)
{
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

int http_read_token_file(const char *path, char **token, struct err *e)
{
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    *token = NULL;
    FILE *f = fopen(path, "re");
    if (!f) return err_set(e, -errno, "%s: %s", path, strerror(errno));
    errno = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0 && errno) {
        rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    size_t len = n > 0 ? (size_t)n : 0;
    while (len > 0 && isspace((unsigned char)line[len - 1])) len--;
    if (len == 0) {
        rc = err_set(e, -EINVAL, "%s: the token file is empty; put the cluster token on its first line",
                     path);
        goto out;
    }
    line[len] = 0;
    if (!http_token_printable(line) || strlen(line) != len) {
        rc = err_set(e, -EINVAL, "%s: the token contains control characters", path);
        goto out;
    }
    *token = xstrndup(line, len);
out:
    free(line);
    fclose(f);
    return rc;
}

/* ---- Server --------------------------------------------------------------------------------- */

struct http_server {
    struct MHD_Daemon *daemon;
    char *token;
    size_t max_body;
    http_handler handler;
    void *arg;
    uint16_t port;
};

/* Per-request state, kept in libmicrohttpd's con_cls from the first access-handler call (headers
 * only) through the body chunks to the last call, and freed by http_on_completed(). */
/* ---- libmicrohttpd, loaded when a server starts ---------------------------------------- *
 *
 * Only the coordinator and the workers serve HTTP, and libmicrohttpd brings GnuTLS and its
 * dependencies, whose loading and constructors cost every process ~2 ms before main(); so,
 * like libcurl below, it is loaded on first use (libmicrohttpd12: libmicrohttpd.so.12). */
static struct {
    struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
                                       void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...);
    void (*stop_daemon)(struct MHD_Daemon *d);
    const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *d, enum MHD_DaemonInfoType t, ...);
    const union MHD_ConnectionInfo *(*get_connection_info)(struct MHD_Connection *c,
                                                            enum MHD_ConnectionInfoType t, ...);
    const char *(*lookup_connection_value)(struct MHD_Connection *c, enum MHD_ValueKind k, const char *key);
    struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buf, enum MHD_ResponseMemoryMode m);
    struct MHD_Response *(*create_response_from_fd_at_offset64)(uint64_t size, int fd, uint64_t offset);
    enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *h, const char *v);
    enum MHD_Result (*queue_response)(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r);
    void (*destroy_response)(struct MHD_Response *r);
} http_mhd;
static pthread_once_t http_mhd_once = PTHREAD_ONCE_INIT;
static char http_mhd_why[300]; /* empty once loaded */

static void http_mhd_load(void)
{
    void *h = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(http_mhd_why, sizeof http_mhd_why,
                 "cannot load libmicrohttpd (install the Debian package libmicrohttpd12): %s", dlerror());
        return;
    }
    struct { void **fn; const char *name; } syms[] = {
        {(void **)&http_mhd.start_daemon, "MHD_start_daemon"},
        {(void **)&http_mhd.stop_daemon, "MHD_stop_daemon"},
        {(void **)&http_mhd.get_daemon_info, "MHD_get_daemon_info"},
        {(void **)&http_mhd.get_connection_info, "MHD_get_connection_info"},
        {(void **)&http_mhd.lookup_connection_value, "MHD_lookup_connection_value"},
        {(void **)&http_mhd.create_response_from_buffer, "MHD_create_response_from_buffer"},
        {(void **)&http_mhd.create_response_from_fd_at_offset64, "MHD_create_response_from_fd_at_offset64"},
        {(void **)&http_mhd.add_response_header, "MHD_add_response_header"},
        {(void **)&http_mhd.queue_response, "MHD_queue_response"},
        {(void **)&http_mhd.destroy_response, "MHD_destroy_response"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].fn = dlsym(h, syms[i].name);
        if (!*syms[i].fn) {
            snprintf(http_mhd_why, sizeof http_mhd_why, "libmicrohttpd lacks %s", syms[i].name);
            return;
        }
    }
}

struct http_upload {
    struct buf body;
    int authorized;    /* the request carried the token */
    int too_large;     /* the body passed max_body: the rest is dropped and the answer is 413 */
    uint64_t drained;  /* bytes dropped after the overflow */
};

/* libmicrohttpd's diagnostics, passed on only when debugging: at the default level a port scan
 * or a broken client must not fill the operator's log. */
__attribute__((format(printf, 2, 0))) static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    log_debug("http: %s", line);
}

static void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct http_upload *up = *con_cls;
    if (!up) return;
    buf_free(&up->body);
    free(up);
    *con_cls = NULL;
}

/* Queues r with status and the content type, then drops our reference (MHD keeps its own). */
static enum MHD_Result http_queue(struct MHD_Connection *conn, int status, struct MHD_Response *r,
                                  const char *content_type)
{
    if (!r) return MHD_NO; /* out of memory inside MHD: closing the connection is all we can do */
    /* A content type with CR/LF is refused by MHD; the response then simply goes without one. */
    http_mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            content_type ? content_type : "application/json");
    enum MHD_Result ret = http_mhd.queue_response(conn, (unsigned int)status, r);
    http_mhd.destroy_response(r);
    return ret;
}

static struct MHD_Response *http_error_body(const char *msg)
{
    http_response tmp = {0};
    http_respond_error(&tmp, 0, msg);
    struct MHD_Response *r =
        http_mhd.create_response_from_buffer(tmp.body_len, tmp.body, MHD_RESPMEM_MUST_FREE);
    if (!r) free(tmp.body);
    return r;
}

static enum MHD_Result http_queue_error(struct MHD_Connection *conn, int status, const char *msg)
{
    return http_queue(conn, status, http_error_body(msg), "application/json");
}

static void http_remote(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        http_mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
            snprintf(out, cap, "[%s]:%u", host, port);
            return;
        }
    }
    snprintf(out, cap, "%s:%u", host, port);
}

/* Whether the request carries "Authorization: Bearer <our token>", or the login cookie. */
static int http_authorized(const http_server *s, struct MHD_Connection *conn)
{
    const char *v = http_mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!v) {
        const char *c = http_mhd.lookup_connection_value(conn, MHD_COOKIE_KIND, HTTP_TOKEN_COOKIE);
        return c && http_token_equal(c, s->token);
    }
    if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t')) return 0;
    v += 6;
    while (*v == ' ' || *v == '\t') v++;
    return http_token_equal(v, s->token);
}

int http_public_path(const char *method, const char *path)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (get && (strcmp(path, "/") == 0 || strncmp(path, "/ui/", 4) == 0 || strcmp(path, "/healthz") == 0 ||
                strcmp(path, "/readyz") == 0))
        return 1;
    return strcmp(method, "POST") == 0 && (strcmp(path, "/v1/login") == 0 || strcmp(path, "/v1/logout") == 0);
}

/* A cookie value may not hold these (RFC 6265's cookie-octet); such a token cannot log in. */
static int http_cookie_safe(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f || strchr("\";,\\", *v)) return 0;
    return 1;
}

/* POST /v1/login and /v1/logout: the browser's way to hold the token without ever putting it
 * in a URL or in script-readable storage (HttpOnly), nor sending it cross-site (Strict). */
static void http_login(const http_server *s, const char *path, const struct buf *body, const char *remote,
                       http_response *resp)
{
    resp->headers[0].name = "Set-Cookie";
    resp->nheaders = 1;
    if (strcmp(path, "/v1/logout") == 0) {
        snprintf(resp->headers[0].value, sizeof resp->headers[0].value,
                 "%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", HTTP_TOKEN_COOKIE);
        resp->status = 204;
        return;
    }
    char tok[400];
    size_t n = body->len;
    while (n > 0 && (body->data[n - 1] == '\n' || body->data[n - 1] == '\r' || body->data[n - 1] == ' ')) n--;
    int ok = n > 0 && n < sizeof tok;
    if (ok) {
        memcpy(tok, body->data, n);
        tok[n] = 0;
        ok = strlen(tok) == n && http_token_equal(tok, s->token);
    }
    if (!ok) {
        log_warn("http: refused a login from %s: wrong token", remote);
        resp->nheaders = 0;
        http_respond_error(resp, 401, "wrong token");
        return;
    }
    if (!http_cookie_safe(tok) ||
        (size_t)snprintf(resp->headers[0].value, sizeof resp->headers[0].value,
                         "%s=%s; Path=/; HttpOnly; SameSite=Strict", HTTP_TOKEN_COOKIE, tok) >=
            sizeof resp->headers[0].value) {
        resp->nheaders = 0;
        http_respond_error(resp, 400, "this token cannot be kept in a cookie (too long, or characters a cookie cannot hold)");
        return;
    }
    resp->status = 204;
}

/* Builds the response for a handler's file range. On any problem with the file the answer becomes
 * a JSON error, with *status and *content_type changed to match. */
static struct MHD_Response *http_file_response(const http_response *resp, int *status,
                                               const char **content_type)
{
    char msg[600];
    int fd = open(resp->file_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int en = errno;
        snprintf(msg, sizeof msg, "%s: %s", resp->file_path, strerror(en));
        *status = en == ENOENT ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(msg, sizeof msg, "%s: not a regular file", resp->file_path);
        *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (resp->file_offset > size || resp->file_length > size - resp->file_offset) {
        /* Promising a Content-Length the file cannot fill would leave the client waiting for
         * bytes that never come; a short file is our fault, hence 500. */
        snprintf(msg, sizeof msg, "%s: range %llu+%llu is beyond the end of the file (%llu bytes)",
                 resp->file_path, (unsigned long long)resp->file_offset,
                 (unsigned long long)resp->file_length, (unsigned long long)size);
        *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto fail;
    }
    if (resp->file_length == 0) {
        close(fd);
        return http_mhd.create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    /* On success MHD owns fd and closes it when the response is destroyed. */
    struct MHD_Response *r =
        http_mhd.create_response_from_fd_at_offset64(resp->file_length, fd, resp->file_offset);
    if (r) return r;
    snprintf(msg, sizeof msg, "%s: cannot stream range %llu+%llu", resp->file_path,
             (unsigned long long)resp->file_offset, (unsigned long long)resp->file_length);
    *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
fail:
    if (fd >= 0) close(fd);
    log_warn("http: answering %d: %s", *status, msg);
    *content_type = "application/json";
    return http_error_body(msg);
}

/* The last access-handler call: the body is complete and within the cap; run the handler. */
static enum MHD_Result http_dispatch(http_server *s, struct MHD_Connection *conn, const char *url,
                                     const char *method, struct http_upload *up)
{
    char remote[INET6_ADDRSTRLEN + 16];
    http_remote(conn, remote, sizeof remote);
    http_request req = {
        .method = method,
        .path = url,
        .body = up->body.data ? up->body.data : "",
        .body_len = up->body.len,
        .remote = remote,
        .authorized = up->authorized,
        .conn = conn,
    };
    http_response resp = {0};
    if (strcmp(method, "POST") == 0 && (strcmp(url, "/v1/login") == 0 || strcmp(url, "/v1/logout") == 0))
        http_login(s, url, &up->body, remote, &resp);
    else
        s->handler(s->arg, &req, &resp);

    int status = resp.status;
    const char *ctype = resp.content_type;
    struct MHD_Response *r;
    if (status < 200 || status > 599) {
        log_error("http: handler for %s %s set status %d; answering 500", method, url, status);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        ctype = "application/json";
        r = http_error_body("internal error: handler set no valid status");
    } else if (resp.file_path) {
        r = http_file_response(&resp, &status, &ctype);
    } else if (resp.body && resp.body_len) {
        r = http_mhd.create_response_from_buffer(resp.body_len, resp.body, MHD_RESPMEM_MUST_FREE);
        if (r) resp.body = NULL; /* MHD frees it with the response */
    } else {
        r = http_mhd.create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    free(resp.body);
    free(resp.file_path);
    for (int i = 0; r && i < resp.nheaders && i < 4; i++)
        if (resp.headers[i].name) http_mhd.add_response_header(r, resp.headers[i].name, resp.headers[i].value);
    return http_queue(conn, status, r, ctype);
}

static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    http_server *s = cls;
    struct http_upload *up = *con_cls;
    (void)version;

    if (!up) {
        /* First call: headers only. Rejections are answered now, before MHD sends
         * "100 Continue" or reads any body, so a refused client wastes no bandwidth. */
        up = xcalloc(1, sizeof *up);
        *con_cls = up;
        up->authorized = http_authorized(s, conn);
        if (!up->authorized && !http_public_path(method, url)) {
            char remote[INET6_ADDRSTRLEN + 16];
            http_remote(conn, remote, sizeof remote);
            log_warn("http: refused %s %s from %s: missing or wrong bearer token (do the token "
                     "files of the cluster match?)", method, url, remote);
            return http_queue_error(conn, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
        }
        const char *cl =
            http_mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            errno = 0;
            char *end;
            unsigned long long len = strtoull(cl, &end, 10);
            if (errno == ERANGE || len > s->max_body)
                return http_queue_error(conn, HTTP_STATUS_TOO_LARGE,
                                        "request body too large");
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!up->too_large && n <= s->max_body - up->body.len) {
            buf_append(&up->body, upload_data, n);
            return MHD_YES;
        }
        /* Chunked bodies carry no length up front, so the overflow shows only now. MHD cannot
         * answer mid-body; drop what arrives and answer 413 at the end. */
        if (!up->too_large) {
            up->too_large = 1;
            buf_free(&up->body);
        }
        up->drained += n;
        return up->drained > HTTP_DRAIN_LIMIT ? MHD_NO : MHD_YES;
    }

    if (up->too_large)
        return http_queue_error(conn, HTTP_STATUS_TOO_LARGE, "request body too large");
    return http_dispatch(s, conn, url, method, up);
}

/* Resolves host (a name or dotted quad; NULL or "" for all interfaces) to an IPv4 address. */
static int http_resolve(const char *host, uint16_t port, struct sockaddr_in *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons(port);
    if (!host || !*host) {
        out->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0 || !res)
        return err_set(e, -EADDRNOTAVAIL, "cannot resolve %s to an IPv4 address: %s", host,
                       g ? gai_strerror(g) : "no address");
    out->sin_addr = ((const struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

int http_server_start(http_server **out, const char *host, uint16_t port, const char *token,
                      size_t max_body, http_handler handler, void *arg, struct err *e)
{
    *out = NULL;
    if (!token || !*token) return err_set(e, -EINVAL, "http server: an empty token is not allowed");
    if (!handler) return err_set(e, -EINVAL, "http server: no handler");
    pthread_once(&http_mhd_once, http_mhd_load);
    if (http_mhd_why[0]) return err_set(e, -ELIBACC, "http server: %s", http_mhd_why);
    struct sockaddr_in sa;
    int rc = http_resolve(host, port, &sa, e);
    if (rc) return rc;

    http_server *s = xcalloc(1, sizeof *s);
    s->token = xstrdup(token);
    s->max_body = max_body;
    s->handler = handler;
    s->arg = arg;

    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (log_min_level <= LOG_DEBUG) flags |= MHD_USE_ERROR_LOG;
    /* The logger must come first so that MHD's complaints about later options reach it. */
    s->daemon = http_mhd.start_daemon(
        flags, port, NULL, NULL, http_on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, (void *)NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, HTTP_CONN_LIMIT,
        MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, (void *)NULL,
        MHD_OPTION_END);
    if (!s->daemon) {
        /* MHD does not say why; errno from the failed bind/listen is usually still set. */
        int en = errno ? errno : EADDRINUSE;
        char addr[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
        rc = err_set(e, -en, "cannot listen on %s:%u: %s (is the port in use?)", addr,
                     (unsigned)port, strerror(en));
        goto fail;
    }
    const union MHD_DaemonInfo *di = http_mhd.get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    if (s->port == 0) {
        rc = err_set(e, -EIO, "http server: cannot tell which port it listens on");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    http_server_stop(s);
    return rc;
}

uint16_t http_server_port(const http_server *s) { return s ? s->port : 0; }

void http_server_stop(http_server *s)
{
    if (!s) return;
    /* Joins every connection thread, so no handler runs after this returns. */
    if (s->daemon) http_mhd.stop_daemon(s->daemon);
    free(s->token);
    free(s);
}

const char *http_request_query(const http_request *req, const char *name)
{
    if (!req || !req->conn || !name) return NULL;
    return http_mhd.lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- Client --------------------------------------------------------------------------------- */

/* libcurl is loaded on the first request (dlopen), not linked: it and the twenty libraries it
 * pulls in (Kerberos, LDAP, SSH, RTMP, TLS...) cost every process 5-10 ms of loading and
 * relocation before main() (measured: an empty program linked with -lcurl starts in 5.7 ms of
 * CPU, 0.7 ms without), and most tally processes never make a request: `tally run`, its
 * executors, the probe. The functions used are looked up by name from the Debian runtime
 * package's library (libcurl4: libcurl.so.4; libcurl3-gnutls works too). */
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_reset)(CURL *h);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} http_curl;
static char http_curl_why[300]; /* why loading failed, for the error message */

static int http_curl_load(void)
{
    static const char *const libs[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0] && !h; i++) h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(http_curl_why, sizeof http_curl_why, "cannot load libcurl (install the Debian package libcurl4): %s",
                 dlerror());
        return -1;
    }
    struct { void **fn; const char *name; } syms[] = {
        {(void **)&http_curl.global_init, "curl_global_init"},
        {(void **)&http_curl.easy_init, "curl_easy_init"},
        {(void **)&http_curl.easy_setopt, "curl_easy_setopt"},
        {(void **)&http_curl.easy_perform, "curl_easy_perform"},
        {(void **)&http_curl.easy_getinfo, "curl_easy_getinfo"},
        {(void **)&http_curl.easy_reset, "curl_easy_reset"},
        {(void **)&http_curl.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&http_curl.easy_strerror, "curl_easy_strerror"},
        {(void **)&http_curl.slist_append, "curl_slist_append"},
        {(void **)&http_curl.slist_free_all, "curl_slist_free_all"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].fn = dlsym(h, syms[i].name);
        if (!*syms[i].fn) {
            snprintf(http_curl_why, sizeof http_curl_why, "libcurl lacks %s", syms[i].name);
            return -1;
        }
    }
    return 0; /* the library stays loaded for the life of the process */
}

static pthread_once_t http_curl_once = PTHREAD_ONCE_INIT;
static CURLcode http_curl_init_rc;
/* Idle curl handles, each with its keep-alive connections, shared by the process: a request
 * takes one (or makes one) and gives it back when done, so a connection outlives the thread
 * that opened it. Before, each thread kept its own handle, and a worker sends each attempt's
 * report from that attempt's own thread: every report opened a new connection, and with it a
 * new thread in the coordinator (libmicrohttpd runs a thread per connection; strace of a small
 * job: a connect per attempt, ~1 ms of each map wave). A handle is used by one thread at a
 * time, which libcurl allows; connections are never shared between concurrent requests, which
 * it does not. */
#define HTTP_POOL_MAX 16
static pthread_mutex_t http_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *http_pool[HTTP_POOL_MAX];
static size_t http_npool;

static void http_curl_global_init(void)
{
    if (http_curl_load() != 0) {
        http_curl_init_rc = CURLE_FAILED_INIT;
        return;
    }
    http_curl_init_rc = http_curl.global_init(CURL_GLOBAL_DEFAULT);
}

/* An idle handle reset to defaults (its connections stay open), or a new one. */
static CURL *http_handle_get(void)
{
    CURL *h = NULL;
    pthread_mutex_lock(&http_pool_lock);
    if (http_npool) h = http_pool[--http_npool];
    pthread_mutex_unlock(&http_pool_lock);
    if (h) {
        http_curl.easy_reset(h);
        return h;
    }
    return http_curl.easy_init();
}

/* Gives a handle back to the pool (closing it when the pool is full). */
static void http_handle_put(CURL *h)
{
    if (!h) return;
    pthread_mutex_lock(&http_pool_lock);
    if (http_npool < HTTP_POOL_MAX) {
        http_pool[http_npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&http_pool_lock);
    if (h) http_curl.easy_cleanup(h);
}

/* One request's curl handle, headers and the buffers curl writes into. */
struct http_xfer {
    CURL *curl;
    struct curl_slist *headers;
    char *url;
    char errbuf[CURL_ERROR_SIZE];
};

static void http_xfer_free(struct http_xfer *x)
{
    /* The handle goes back to the pool, with its connections. */
    http_handle_put(x->curl);
    x->curl = NULL;
    if (x->headers) http_curl.slist_free_all(x->headers);
    free(x->url);
}

/* Prepares x for METHOD http://address/path with the bearer token and the timeout. */
static int http_xfer_init(struct http_xfer *x, const char *address, const char *path,
                          const char *token, long timeout_ms, struct err *e)
{
    memset(x, 0, sizeof *x);
    pthread_once(&http_curl_once, http_curl_global_init);
    if (http_curl_init_rc != CURLE_OK)
        return err_set(e, -EIO, "libcurl initialisation failed: %s",
                       http_curl_why[0] ? http_curl_why : http_curl.easy_strerror(http_curl_init_rc));
    if (!address || !*address || !path)
        return err_set(e, -EINVAL, "http: missing address or path");
    if (token && !http_token_printable(token))
        return err_set(e, -EINVAL, "http: the token contains control characters");
    x->url = xasprintf("%s%s%s%s", strstr(address, "://") ? "" : "http://", address,
                       path[0] == '/' ? "" : "/", path);
    x->curl = http_handle_get();
    if (!x->curl) return err_set(e, -ENOMEM, "http: curl_easy_init failed");
    if (token) {
        char *h = xasprintf("Authorization: Bearer %s", token);
        struct curl_slist *l = http_curl.slist_append(x->headers, h);
        free(h);
        if (!l) return err_set(e, -ENOMEM, "http: out of memory building headers");
        x->headers = l;
    }
    CURL *c = x->curl;
    http_curl.easy_setopt(c, CURLOPT_URL, x->url);
    /* Threads call us concurrently; signals for DNS timeouts would hit an arbitrary one. */
    http_curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    http_curl.easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
    http_curl.easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    http_curl.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* The URL is always ours, but a scheme in `address` must not lead to file:// or the like. */
    http_curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    return 0;
}

/* Turns a failed transfer into a negative errno-style code and a message. */
static int http_xfer_error(struct http_xfer *x, const char *method, CURLcode cc, struct err *e)
{
    long os_errno = 0;
    http_curl.easy_getinfo(x->curl, CURLINFO_OS_ERRNO, &os_errno);
    int code;
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT: code = -ETIMEDOUT; break;
    case CURLE_COULDNT_CONNECT: code = os_errno > 0 ? -(int)os_errno : -ECONNREFUSED; break;
    case CURLE_COULDNT_RESOLVE_HOST: code = -EHOSTUNREACH; break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: code = -EINVAL; break;
    case CURLE_OUT_OF_MEMORY: code = -ENOMEM; break;
    default: code = -EIO; break;
    }
    return err_set(e, code, "%s %s: %s", method, x->url, x->errbuf[0] ? x->errbuf : http_curl.easy_strerror(cc));
}

/* The response body of http_call(), bounded by HTTP_MAX_RESPONSE. */
struct http_sink {
    struct buf body;
    int overflow;
};

static size_t http_sink_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_sink *s = arg;
    size_t n = size * nmemb;
    if (n > HTTP_MAX_RESPONSE - s->body.len) {
        s->overflow = 1;
        return 0; /* any short count makes curl abort with CURLE_WRITE_ERROR */
    }
    /* Grow by doubling but never past the cap (+1 for the NUL), so an accepted response of the
     * maximum size does not reserve twice its memory. */
    size_t need = s->body.len + n + 1;
    if (need > s->body.cap) {
        size_t cap = s->body.cap ? s->body.cap : 4096;
        while (cap < need) cap *= 2;
        if (cap > HTTP_MAX_RESPONSE + 1) cap = HTTP_MAX_RESPONSE + 1;
        s->body.data = xrealloc(s->body.data, cap);
        s->body.cap = cap;
    }
    memcpy(s->body.data + s->body.len, p, n);
    s->body.len += n;
    s->body.data[s->body.len] = 0;
    return n;
}

int http_call(const char *address, const char *method, const char *path, const char *token,
              const char *body, long timeout_ms, int *status, char **out, struct err *e)
{
    struct http_xfer x;
    struct http_sink sink = {0};
    if (status) *status = 0;
    if (out) *out = NULL;
    if (!method || !*method) method = body ? "POST" : "GET";
    int rc = http_xfer_init(&x, address, path, token, timeout_ms, e);
    if (rc) goto out;

    CURL *c = x.curl;
    if (strcmp(method, "HEAD") == 0) {
        http_curl.easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (body) {
        http_curl.easy_setopt(c, CURLOPT_POSTFIELDS, body);
        http_curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        if (strcmp(method, "POST") != 0) http_curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        struct curl_slist *l = http_curl.slist_append(x.headers, "Content-Type: application/json");
        if (!l) {
            rc = err_set(e, -ENOMEM, "http: out of memory building headers");
            goto out;
        }
        x.headers = l;
    } else if (strcmp(method, "GET") != 0) {
        http_curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    http_curl.easy_setopt(c, CURLOPT_HTTPHEADER, x.headers);
    http_curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, http_sink_write);
    http_curl.easy_setopt(c, CURLOPT_WRITEDATA, &sink);

    CURLcode cc = http_curl.easy_perform(c);
    if (sink.overflow) {
        rc = err_set(e, -EFBIG, "%s %s: response body exceeds %zu MiB", method, x.url,
                     HTTP_MAX_RESPONSE >> 20);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = http_xfer_error(&x, method, cc, e);
        goto out;
    }
    long code = 0;
    http_curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (status) *status = (int)code;
    if (out) {
        *out = sink.body.data ? sink.body.data : xstrdup("");
        sink.body.data = NULL;
    }
out:
    buf_free(&sink.body);
    http_xfer_free(&x);
    return rc;
}

/* Where http_download() puts the body: the file when the status is 200, otherwise the first
 * bytes of the (error) body, kept for the message. */
struct http_filesink {
    CURL *curl;
    int fd;
    long status;       /* 0 until the first body bytes arrive */
    int write_errno;   /* set when writing the file failed */
    uint64_t bytes;    /* body bytes written */
    struct buf errbody;
    http_header *want;
    size_t nwant;
};

/* Header callback: captures the wanted headers (one header line per call, with CRLF). */
static size_t http_filesink_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_filesink *s = arg;
    size_t n = size * nmemb;
    for (size_t i = 0; i < s->nwant; i++) {
        http_header *h = &s->want[i];
        size_t nl = strlen(h->name);
        if (n <= nl || p[nl] != ':' || strncasecmp(p, h->name, nl) != 0) continue;
        const char *v = p + nl + 1, *end = p + n;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
        size_t vl = (size_t)(end - v) < sizeof h->value - 1 ? (size_t)(end - v) : sizeof h->value - 1;
        memcpy(h->value, v, vl);
        h->value[vl] = '\0';
        h->found = 1;
    }
    return n;
}

static size_t http_filesink_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_filesink *s = arg;
    size_t n = size * nmemb;
    if (s->status == 0) http_curl.easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200) {
        if (s->errbody.len < HTTP_ERRBODY_MAX) {
            size_t k = HTTP_ERRBODY_MAX - s->errbody.len;
            buf_append(&s->errbody, p, n < k ? n : k);
        }
        return n;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = write(s->fd, p + done, n - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            s->write_errno = errno;
            return 0;
        }
        done += (size_t)w;
    }
    s->bytes += n;
    return n;
}

int http_download(const char *address, const char *path, const char *token, const char *dest,
                  long timeout_ms, http_header *want, size_t nwant, int *status, uint64_t *bytes,
                  int *local, struct err *e)
{
    if (local) *local = 0;
    struct http_xfer x;
    struct http_filesink sink = {.fd = -1, .want = want, .nwant = want ? nwant : 0};
    for (size_t i = 0; i < sink.nwant; i++) {
        want[i].found = 0;
        want[i].value[0] = '\0';
    }
    if (status) *status = 0;
    if (bytes) *bytes = 0;
    int rc = http_xfer_init(&x, address, path, token, timeout_ms, e);
    if (rc) goto out;
    sink.fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (sink.fd < 0) {
        rc = err_set(e, -errno, "%s: %s", dest, strerror(errno));
        if (local) *local = 1;
        goto out;
    }
    sink.curl = x.curl;
    http_curl.easy_setopt(x.curl, CURLOPT_HTTPHEADER, x.headers);
    http_curl.easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, http_filesink_write);
    http_curl.easy_setopt(x.curl, CURLOPT_WRITEDATA, &sink);
    if (sink.nwant) {
        http_curl.easy_setopt(x.curl, CURLOPT_HEADERFUNCTION, http_filesink_header);
        http_curl.easy_setopt(x.curl, CURLOPT_HEADERDATA, &sink);
    }
    /* A download may be large: bound connecting and stalling, not the whole transfer. */
    long secs = timeout_ms > 0 ? (timeout_ms + 999) / 1000 : 0;
    http_curl.easy_setopt(x.curl, CURLOPT_TIMEOUT_MS, 0L);
    http_curl.easy_setopt(x.curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
    http_curl.easy_setopt(x.curl, CURLOPT_LOW_SPEED_LIMIT, secs ? 1L : 0L);
    http_curl.easy_setopt(x.curl, CURLOPT_LOW_SPEED_TIME, secs);

    CURLcode cc = http_curl.easy_perform(x.curl);
    long code = 0;
    http_curl.easy_getinfo(x.curl, CURLINFO_RESPONSE_CODE, &code);
    if (status) *status = (int)code;
    if (sink.write_errno) {
        rc = err_set(e, -sink.write_errno, "GET %s: writing %s: %s", x.url, dest,
                     strerror(sink.write_errno));
        if (local) *local = 1;
    } else if (cc != CURLE_OK) {
        rc = http_xfer_error(&x, "GET", cc, e);
    } else if (code != 200) {
        rc = err_set(e, code == 404 ? -ENOENT : (code == 401 || code == 403) ? -EACCES : -EPROTO,
                     "GET %s: status %ld: %s", x.url, code,
                     sink.errbody.len ? sink.errbody.data : "(no body)");
    }
    if (close(sink.fd) != 0 && rc == 0) {
        rc = err_set(e, -errno, "%s: %s", dest, strerror(errno));
        if (local) *local = 1;
    }
    sink.fd = -1;
    if (rc == 0 && bytes) *bytes = sink.bytes;
    /* A partial or error-body file must not look like a finished download. */
    if (rc) unlink(dest);
out:
    if (sink.fd >= 0) close(sink.fd);
    buf_free(&sink.errbody);
    http_xfer_free(&x);
    return rc;
}

void http_respond_metrics(http_response *resp, struct buf *b, const char *who)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    buf_appendf(b,
                "# HELP process_cpu_seconds_total CPU time of the %s process.\n"
                "# TYPE process_cpu_seconds_total counter\n"
                "process_cpu_seconds_total %.3f\n"
                "# HELP process_max_resident_memory_bytes Peak resident memory of the %s process.\n"
                "# TYPE process_max_resident_memory_bytes gauge\n"
                "process_max_resident_memory_bytes %ld\n",
                who,
                (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
                who, ru.ru_maxrss * 1024L);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
    resp->body = b->data;
    resp->body_len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
}
