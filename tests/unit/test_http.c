/* test_http.c - unit tests for the HTTP layer (http.c) over real sockets on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "net/http.h"

#define TOKEN "s3cret-token"
#define MAX_BODY 1024

/* ---- The server every test talks to ---------------------------------------------------------- */

static http_server *srv;
static char addr[64];
static char tmpdir[64];
/* Every handler invocation counts here, so tests can prove that a rejection never reached it. */
static atomic_int handler_calls;

static char *tmp_path(const char *name) { return xasprintf("%s/%s", tmpdir, name); }

static uint64_t query_u64(const http_request *req, const char *name)
{
    const char *v = http_request_query(req, name);
    return v ? strtoull(v, NULL, 10) : 0;
}

/* Routes: /echo returns the body; /info the method and sizes; /query parameters a and b;
 * /file streams ?path from ?off for ?len bytes; /remote the peer; /slow sleeps a second. */
static void test_handler(void *arg, const http_request *req, http_response *resp)
{
    (void)arg;
    atomic_fetch_add(&handler_calls, 1);
    if (strcmp(req->path, "/echo") == 0) {
        resp->status = 200;
        resp->content_type = "text/plain";
        resp->body = xmalloc(req->body_len + 1);
        memcpy(resp->body, req->body, req->body_len);
        resp->body_len = req->body_len;
    } else if (strcmp(req->path, "/info") == 0) {
        http_respond_json(resp, 200, "{\"method\":\"%s\",\"len\":%zu,\"strlen\":%zu}", req->method,
                          req->body_len, strlen(req->body));
    } else if (strcmp(req->path, "/query") == 0) {
        const char *a = http_request_query(req, "a"), *b = http_request_query(req, "b");
        http_respond_json(resp, 200, "{\"a\":\"%s\",\"b\":\"%s\"}", a ? a : "(null)",
                          b ? b : "(null)");
    } else if (strcmp(req->path, "/file") == 0) {
        const char *p = http_request_query(req, "path");
        if (!p) {
            http_respond_error(resp, 400, "path missing");
            return;
        }
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        resp->file_path = xstrdup(p);
        resp->file_offset = query_u64(req, "off");
        resp->file_length = query_u64(req, "len");
        resp->headers[0].name = "X-Range-Length";
        snprintf(resp->headers[0].value, sizeof resp->headers[0].value, "%llu",
                 (unsigned long long)resp->file_length);
        resp->nheaders = 1;
    } else if (strcmp(req->path, "/remote") == 0) {
        http_respond_json(resp, 200, "%s", req->remote);
    } else if (strcmp(req->path, "/slow") == 0) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
        http_respond_json(resp, 200, "{}");
    } else if (strcmp(req->path, "/nostatus") == 0) {
        /* Deliberately leaves resp untouched. */
    } else {
        http_respond_error(resp, 404, "no such route");
    }
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tally-test-http.XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    struct err e = {0};
    if (http_server_start(&srv, "127.0.0.1", 0, TOKEN, MAX_BODY, test_handler, NULL, &e) != 0) {
        fprintf(stderr, "http_server_start: %s\n", e.msg);
        return -1;
    }
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)http_server_port(srv));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    http_server_stop(srv);
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* One call expected to reach the server; returns the body (caller frees) and checks status. */
static char *call_ok(const char *method, const char *path, const char *token, const char *body,
                     int want_status)
{
    struct err e = {0};
    int status = -1;
    char *out = NULL;
    int rc = http_call(addr, method, path, token, body, 5000, &status, &out, &e);
    if (rc) fail_msg("%s %s: rc %d: %s", method, path, rc, e.msg);
    assert_non_null(out);
    if (status != want_status)
        fail_msg("%s %s: status %d, wanted %d (body %s)", method, path, status, want_status, out);
    return out;
}

/* Sends raw bytes to the server and returns whatever it answers before closing or 5 s. */
static char *raw_exchange(const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(http_server_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* The server may answer and close before reading everything; a failed send is expected. */
    for (size_t done = 0; done < len;) {
        ssize_t w = send(fd, req + done, len - done, MSG_NOSIGNAL);
        if (w <= 0) break;
        done += (size_t)w;
    }
    /* Half-close, so that a request the server is still waiting on (say, blank lines) ends now
     * instead of at the server's idle timeout. */
    shutdown(fd, SHUT_WR);
    struct buf b = {0};
    buf_append(&b, "", 0);
    char tmp[4096];
    for (;;) {
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r <= 0) break;
        buf_append(&b, tmp, (size_t)r);
    }
    close(fd);
    return b.data;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct buf b = {0};
    buf_append(&b, "", 0);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_append(&b, tmp, n);
    fclose(f);
    *len = b.len;
    return b.data;
}

/* ---- Requests that reach the handler -------------------------------------------------------- */

static void test_echo(void **state)
{
    (void)state;
    int before = atomic_load(&handler_calls);
    char *out = call_ok("POST", "/echo", TOKEN, "{\"x\": [1, 2, \"three\"]}", 200);
    assert_string_equal(out, "{\"x\": [1, 2, \"three\"]}");
    free(out);
    out = call_ok("PUT", "/info", TOKEN, "abc", 200);
    assert_string_equal(out, "{\"method\":\"PUT\",\"len\":3,\"strlen\":3}");
    free(out);
    /* No body: the handler still sees an empty string, never NULL. */
    out = call_ok("GET", "/info", TOKEN, NULL, 200);
    assert_string_equal(out, "{\"method\":\"GET\",\"len\":0,\"strlen\":0}");
    free(out);
    out = call_ok("DELETE", "/info", TOKEN, NULL, 200);
    assert_string_equal(out, "{\"method\":\"DELETE\",\"len\":0,\"strlen\":0}");
    free(out);
    out = call_ok("GET", "/nowhere", TOKEN, NULL, 404);
    assert_string_equal(out, "{\"error\": \"no such route\"}");
    free(out);
    assert_int_equal(atomic_load(&handler_calls), before + 5);
}

static void test_body_at_cap(void **state)
{
    (void)state;
    char *big = xmalloc(MAX_BODY + 1);
    memset(big, 'a', MAX_BODY);
    big[MAX_BODY] = 0;
    char *out = call_ok("POST", "/echo", TOKEN, big, 200);
    assert_string_equal(out, big);
    free(out);
    free(big);
}

static void test_query(void **state)
{
    (void)state;
    char *out = call_ok("GET", "/query?a=1&b=x%20y", TOKEN, NULL, 200);
    assert_string_equal(out, "{\"a\":\"1\",\"b\":\"x y\"}");
    free(out);
    out = call_ok("GET", "/query", TOKEN, NULL, 200);
    assert_string_equal(out, "{\"a\":\"(null)\",\"b\":\"(null)\"}");
    free(out);
}

static void test_remote(void **state)
{
    (void)state;
    char *out = call_ok("GET", "/remote", TOKEN, NULL, 200);
    assert_true(strncmp(out, "127.0.0.1:", 10) == 0);
    assert_true(atoi(out + 10) > 0);
    free(out);
}

static void test_handler_without_status(void **state)
{
    (void)state;
    char *out = call_ok("GET", "/nostatus", TOKEN, NULL, 500);
    assert_non_null(strstr(out, "\"error\""));
    free(out);
}

/* ---- Rejections ------------------------------------------------------------------------------ */

static void test_unauthorized(void **state)
{
    (void)state;
    int before = atomic_load(&handler_calls);
    const char *bad[] = {NULL, "wrong", "s3cret-toke", "s3cret-tokenX", "S3CRET-TOKEN", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = call_ok("POST", "/echo", bad[i], "{}", 401);
        assert_non_null(strstr(out, "\"error\""));
        free(out);
    }
    /* Another scheme, or the right token with no scheme, is refused too. */
    const char *raw[] = {
        "GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " TOKEN "\r\nConnection: close\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: " TOKEN "\r\nConnection: close\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\nConnection: close\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        char *resp = raw_exchange(raw[i], strlen(raw[i]));
        if (strncmp(resp, "HTTP/1.1 401", 12) != 0) fail_msg("raw %zu got: %.80s", i, resp);
        free(resp);
    }
    assert_int_equal(atomic_load(&handler_calls), before);
    /* A lowercase scheme is still a bearer token (schemes are case-insensitive). */
    const char *ok = "GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: bearer " TOKEN
                     "\r\nConnection: close\r\n\r\n";
    char *resp = raw_exchange(ok, strlen(ok));
    assert_true(strncmp(resp, "HTTP/1.1 200", 12) == 0);
    free(resp);
}

static void test_too_large(void **state)
{
    (void)state;
    int before = atomic_load(&handler_calls);
    size_t sizes[] = {MAX_BODY + 1, 64 * 1024, 3 * 1024 * 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *big = xmalloc(sizes[i] + 1);
        memset(big, 'b', sizes[i]);
        big[sizes[i]] = 0;
        char *out = call_ok("POST", "/echo", TOKEN, big, 413);
        assert_non_null(strstr(out, "\"error\""));
        free(out);
        free(big);
    }
    assert_int_equal(atomic_load(&handler_calls), before);
}

/* A chunked body has no Content-Length, so the cap is only noticed while reading it. */
static void test_too_large_chunked(void **state)
{
    (void)state;
    int before = atomic_load(&handler_calls);
    struct buf req = {0};
    buf_appendf(&req, "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", TOKEN);
    char chunk[512];
    memset(chunk, 'c', sizeof chunk);
    for (int i = 0; i < 8; i++) {
        buf_appendf(&req, "%zx\r\n", sizeof chunk);
        buf_append(&req, chunk, sizeof chunk);
        buf_append(&req, "\r\n", 2);
    }
    buf_append(&req, "0\r\n\r\n", 5);
    char *resp = raw_exchange(req.data, req.len);
    if (strncmp(resp, "HTTP/1.1 413", 12) != 0) fail_msg("got: %.80s", resp);
    free(resp);
    buf_free(&req);
    assert_int_equal(atomic_load(&handler_calls), before);

    /* The same framing within the cap is accepted and reassembled. */
    const char *small = "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    resp = raw_exchange(small, strlen(small));
    assert_true(strncmp(resp, "HTTP/1.1 200", 12) == 0);
    assert_non_null(strstr(resp, "\r\n\r\nabcdefg"));
    free(resp);
}

/* Garbage, oversized headers and absurd lengths are answered or dropped; the server lives on. */
static void test_malformed(void **state)
{
    (void)state;
    int before = atomic_load(&handler_calls);
    const char *reqs[] = {
        "GARBAGE\r\n\r\n",
        "\r\n\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "GET /echo HTTP/1.1\r\n\r\n", /* HTTP/1.1 without Host */
        "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
        "\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
        "\r\nContent-Length: -5\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
        "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        char *resp = raw_exchange(reqs[i], strlen(reqs[i]));
        if (strncmp(resp, "HTTP/1.1 200", 12) == 0) fail_msg("request %zu was accepted", i);
        free(resp);
    }

    struct buf huge = {0};
    buf_appendf(&huge, "GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-Big: ", TOKEN);
    for (int i = 0; i < 200000; i++) buf_putc(&huge, 'h');
    buf_append(&huge, "\r\n\r\n", 4);
    char *resp = raw_exchange(huge.data, huge.len);
    /* MHD refuses the header (431) or drops the connection; either way no 200. */
    assert_true(strncmp(resp, "HTTP/1.1 200", 12) != 0);
    free(resp);
    buf_free(&huge);

    /* A connection that sends half a request and closes. */
    const char *half = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(http_server_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_true(send(fd, half, strlen(half), MSG_NOSIGNAL) > 0);
    close(fd);

    assert_int_equal(atomic_load(&handler_calls), before);
    char *out = call_ok("GET", "/info", TOKEN, NULL, 200);
    free(out);
}

/* ---- Files ----------------------------------------------------------------------------------- */

static void test_download_range(void **state)
{
    (void)state;
    size_t n = 300000;
    unsigned char *data = xmalloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    char *src = tmp_path("src.bin"), *dst = tmp_path("dst.bin");
    write_file(src, data, n);

    struct {
        uint64_t off, len;
    } ranges[] = {{12345, 200000}, {0, 300000}, {299999, 1}, {100, 0}};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        char *path = xasprintf("/file?path=%s&off=%llu&len=%llu", src,
                               (unsigned long long)ranges[i].off, (unsigned long long)ranges[i].len);
        struct err e = {0};
        int status = 0;
        uint64_t bytes = 1;
        /* Header names match without regard to case; absent ones say so. */
        http_header h[2] = {{.name = "x-range-length"}, {.name = "X-Not-Sent"}};
        int rc = http_download(addr, path, TOKEN, dst, 5000, h, 2, &status, &bytes, NULL, &e);
        if (rc) fail_msg("download %s: %s", path, e.msg);
        assert_int_equal(status, 200);
        assert_int_equal(bytes, ranges[i].len);
        assert_true(h[0].found);
        assert_int_equal(strtoull(h[0].value, NULL, 10), ranges[i].len);
        assert_false(h[1].found);
        size_t got_len;
        char *got = read_file(dst, &got_len);
        assert_int_equal(got_len, ranges[i].len);
        assert_memory_equal(got, data + ranges[i].off, got_len);
        free(got);
        free(path);
    }
    unlink(src);
    unlink(dst);
    free(src);
    free(dst);
    free(data);
}

static void assert_download_fails(const char *path, int want_status, const char *token)
{
    char *dst = tmp_path("fail.bin");
    write_file(dst, "stale", 5); /* must be gone afterwards, not left half-written */
    struct err e = {0};
    int status = 0, local = -1;
    int rc = http_download(addr, path, token, dst, 5000, NULL, 0, &status, NULL, &local, &e);
    assert_true(rc < 0);
    assert_int_equal(status, want_status);
    assert_int_equal(local, 0); /* the server's fault, not ours */
    assert_true(e.msg[0] != 0);
    struct stat st;
    assert_int_equal(stat(dst, &st), -1);
    assert_int_equal(errno, ENOENT);
    free(dst);
}

static void test_download_missing(void **state)
{
    (void)state;
    char *missing = tmp_path("no-such-file");
    char *path = xasprintf("/file?path=%s&off=0&len=10", missing);
    assert_download_fails(path, 404, TOKEN);
    char *out = call_ok("GET", path, TOKEN, NULL, 404);
    assert_non_null(strstr(out, "\"error\""));
    free(out);
    free(path);
    free(missing);
}

static void test_download_errors(void **state)
{
    (void)state;
    char *src = tmp_path("short.bin");
    write_file(src, "0123456789", 10);
    /* A range past the end of the file is the server's fault. */
    char *path = xasprintf("/file?path=%s&off=5&len=6", src);
    assert_download_fails(path, 500, TOKEN);
    free(path);
    path = xasprintf("/file?path=%s&off=11&len=0", src);
    assert_download_fails(path, 500, TOKEN);
    free(path);
    /* A directory is not a file to stream. */
    path = xasprintf("/file?path=%s&off=0&len=1", tmpdir);
    assert_download_fails(path, 500, TOKEN);
    free(path);
    /* Wrong token. */
    path = xasprintf("/file?path=%s&off=0&len=10", src);
    assert_download_fails(path, 401, "nope");
    free(path);
    unlink(src);
    free(src);

    /* Where the file cannot be written, the failure is ours ("local"), not the server's. */
    {
        char *src2 = tmp_path("ok.bin"), *bad = tmp_path("no-such-dir/out.bin");
        write_file(src2, "0123456789", 10);
        char *p2 = xasprintf("/file?path=%s&off=0&len=10", src2);
        struct err e2 = {0};
        int st2 = 0, local = 0;
        assert_true(http_download(addr, p2, TOKEN, bad, 5000, NULL, 0, &st2, NULL, &local, &e2) < 0);
        assert_int_equal(local, 1);
        unlink(src2);
        free(p2);
        free(src2);
        free(bad);
    }
    /* Nothing listening: a transport error, no status, no file. */
    char *dst = tmp_path("never.bin");
    struct err e = {0};
    int status = -1;
    assert_true(http_download("127.0.0.1:1", "/file", TOKEN, dst, 2000, NULL, 0, &status, NULL, NULL, &e) < 0);
    assert_int_equal(status, 0);
    assert_int_equal(access(dst, F_OK), -1);
    free(dst);
}

/* http_call holds the body in memory and must refuse one above 64 MiB. A sparse file makes the
 * big response cheap to produce. */
static void test_response_cap(void **state)
{
    (void)state;
    char *src = tmp_path("sparse.bin");
    int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint64_t size = (64ull << 20) + 1;
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
    char *path = xasprintf("/file?path=%s&off=0&len=%llu", src, (unsigned long long)size);
    struct err e = {0};
    int status = 0;
    char *out = NULL;
    int rc = http_call(addr, "GET", path, TOKEN, NULL, 30000, &status, &out, &e);
    assert_int_equal(rc, -EFBIG);
    assert_null(out);
    assert_non_null(strstr(e.msg, "64 MiB"));
    free(path);
    unlink(src);
    free(src);
}

/* ---- Client failures ------------------------------------------------------------------------- */

static void test_closed_port(void **state)
{
    (void)state;
    /* A socket bound but not listening reserves a port on which every connect is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char closed[64];
    snprintf(closed, sizeof closed, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));

    struct err e = {0};
    int status = -1;
    char *out = (char *)"untouched";
    uint64_t t0 = time_mono_ms();
    int rc = http_call(closed, "POST", "/echo", TOKEN, "{}", 10000, &status, &out, &e);
    uint64_t took = time_mono_ms() - t0;
    close(fd);
    assert_int_equal(rc, -ECONNREFUSED);
    assert_null(out);
    assert_int_equal(status, 0);
    assert_non_null(strstr(e.msg, closed));
    if (took > 2000) fail_msg("refused connection took %llu ms", (unsigned long long)took);
}

static void test_timeout(void **state)
{
    (void)state;
    struct err e = {0};
    int status = -1;
    char *out = NULL;
    uint64_t t0 = time_mono_ms();
    int rc = http_call(addr, "GET", "/slow", TOKEN, NULL, 200, &status, &out, &e);
    uint64_t took = time_mono_ms() - t0;
    assert_int_equal(rc, -ETIMEDOUT);
    assert_null(out);
    if (took > 900) fail_msg("a 200 ms timeout took %llu ms", (unsigned long long)took);
}

static void *concurrent_worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 20; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"worker\":%ld,\"i\":%d}", id, i);
        struct err e = {0};
        int status = 0;
        char *out = NULL;
        if (http_call(addr, "POST", "/echo", TOKEN, body, 5000, &status, &out, &e) != 0 ||
            status != 200 || strcmp(out, body) != 0) {
            free(out);
            return (void *)1;
        }
        free(out);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    pthread_t t[6];
    for (long i = 0; i < 6; i++) assert_int_equal(pthread_create(&t[i], NULL, concurrent_worker, (void *)i), 0);
    int failures = 0;
    for (int i = 0; i < 6; i++) {
        void *r;
        pthread_join(t[i], &r);
        failures += r != NULL;
    }
    assert_int_equal(failures, 0);
}

/* ---- Server start-up ------------------------------------------------------------------------- */

static void test_start_errors(void **state)
{
    (void)state;
    http_server *s = NULL;
    struct err e = {0};
    /* The port the fixture server already holds. */
    int rc = http_server_start(&s, "127.0.0.1", http_server_port(srv), TOKEN, 10, test_handler,
                               NULL, &e);
    assert_true(rc < 0);
    assert_null(s);
    assert_non_null(strstr(e.msg, "cannot listen"));

    err_clear(&e);
    rc = http_server_start(&s, "no-such-host.invalid", 0, TOKEN, 10, test_handler, NULL, &e);
    assert_true(rc < 0);
    assert_non_null(strstr(e.msg, "no-such-host.invalid"));

    err_clear(&e);
    rc = http_server_start(&s, "127.0.0.1", 0, "", 10, test_handler, NULL, &e);
    assert_true(rc < 0);

    /* 0.0.0.0 binds all interfaces, loopback included; stop works with no traffic. */
    err_clear(&e);
    rc = http_server_start(&s, "0.0.0.0", 0, TOKEN, 10, test_handler, NULL, &e);
    if (rc) fail_msg("0.0.0.0: %s", e.msg);
    assert_true(http_server_port(s) > 0);
    char other[64];
    snprintf(other, sizeof other, "127.0.0.1:%u", (unsigned)http_server_port(s));
    int status = 0;
    char *out = NULL;
    assert_int_equal(http_call(other, "GET", "/info", TOKEN, NULL, 5000, &status, &out, &e), 0);
    assert_int_equal(status, 200);
    free(out);
    http_server_stop(s);
    http_server_stop(NULL);
}

/* ---- Helpers without a network --------------------------------------------------------------- */

static void test_token_file(void **state)
{
    (void)state;
    char *path = tmp_path("token");
    char *tok = NULL;
    struct err e = {0};

    write_file(path, "abc123 \t\r\nsecond line\n", 23);
    assert_int_equal(http_read_token_file(path, &tok, &e), 0);
    assert_string_equal(tok, "abc123");
    free(tok);

    write_file(path, "no-newline", 10);
    assert_int_equal(http_read_token_file(path, &tok, &e), 0);
    assert_string_equal(tok, "no-newline");
    free(tok);

    const char *empties[] = {"", "\n", "  \r\n", "\nsecond\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        write_file(path, empties[i], strlen(empties[i]));
        err_clear(&e);
        tok = (char *)"untouched";
        assert_int_equal(http_read_token_file(path, &tok, &e), -EINVAL);
        assert_null(tok);
        assert_non_null(strstr(e.msg, path));
    }

    write_file(path, "ab\rcd\n", 6);
    assert_int_equal(http_read_token_file(path, &tok, &e), -EINVAL);

    unlink(path);
    err_clear(&e);
    assert_int_equal(http_read_token_file(path, &tok, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    free(path);
}

static void test_token_equal(void **state)
{
    (void)state;
    assert_true(http_token_equal("abc", "abc"));
    assert_true(http_token_equal("", ""));
    assert_false(http_token_equal("abc", "abd"));
    assert_false(http_token_equal("abc", "ab"));
    assert_false(http_token_equal("ab", "abc"));
    assert_false(http_token_equal("", "a"));
    assert_false(http_token_equal("xbc", "abc"));
    assert_false(http_token_equal(NULL, "abc"));
    assert_false(http_token_equal("abc", NULL));
}

static void test_respond_helpers(void **state)
{
    (void)state;
    http_response r = {0};
    http_respond_error(&r, 400, "bad \"x\"\\\n\x01");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.body, "{\"error\": \"bad \\\"x\\\"\\\\\\u000a\\u0001\"}");
    assert_int_equal(r.body_len, strlen(r.body));
    /* A second call replaces the body without leaking the first. */
    http_respond_json(&r, 201, "{\"n\":%d}", 7);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"n\":7}");
    assert_int_equal(r.body_len, 7);
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_body_at_cap),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_remote),
        cmocka_unit_test(test_handler_without_status),
        cmocka_unit_test(test_unauthorized),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_too_large_chunked),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_download_range),
        cmocka_unit_test(test_download_missing),
        cmocka_unit_test(test_download_errors),
        cmocka_unit_test(test_response_cap),
        cmocka_unit_test(test_closed_port),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_respond_helpers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
