/* statuspage.c - the embedded status page files and their answers. */
#include "obs/statuspage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* The files are assembled into the object with .incbin (the paths are relative to the source
 * root, where make runs the compiler; the Makefile makes this object depend on them), each
 * followed by a NUL so that its end is known without a length table. */
#define STATUSPAGE_EMBED(sym, file)                                                               \
    __asm__(".section .rodata\n"                                                                  \
            ".balign 16\n"                                                                        \
            ".global " #sym "\n"                                                                  \
            ".hidden " #sym "\n" #sym ":\n"                                                       \
            ".incbin \"" file "\"\n"                                                              \
            ".byte 0\n"                                                                           \
            ".previous\n")

STATUSPAGE_EMBED(statuspage_index_html, "web/index.html");
STATUSPAGE_EMBED(statuspage_status_js, "web/status.js");
STATUSPAGE_EMBED(statuspage_status_css, "web/status.css");

extern const char statuspage_index_html[], statuspage_status_js[], statuspage_status_css[];

static const struct statuspage_file {
    const char *path, *type;
    const char *data;
} statuspage_files[] = {
    {"/", "text/html; charset=utf-8", statuspage_index_html},
    {"/ui/status.js", "text/javascript; charset=utf-8", statuspage_status_js},
    {"/ui/status.css", "text/css; charset=utf-8", statuspage_status_css},
};

int statuspage_serve(const char *path, http_response *resp)
{
    for (size_t i = 0; i < sizeof statuspage_files / sizeof statuspage_files[0]; i++) {
        const struct statuspage_file *f = &statuspage_files[i];
        if (strcmp(path, f->path) != 0) continue;
        resp->status = 200;
        resp->content_type = f->type;
        resp->body_len = strlen(f->data);
        resp->body = xmalloc(resp->body_len + 1);
        memcpy(resp->body, f->data, resp->body_len + 1);
        /* Only our own script and style, nothing inline, no framing by other sites. */
        resp->headers[0].name = "Content-Security-Policy";
        snprintf(resp->headers[0].value, sizeof resp->headers[0].value,
                 "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
        resp->headers[1].name = "X-Content-Type-Options";
        snprintf(resp->headers[1].value, sizeof resp->headers[1].value, "nosniff");
        resp->headers[2].name = "Cache-Control";
        snprintf(resp->headers[2].value, sizeof resp->headers[2].value, "no-cache");
        resp->nheaders = 3;
        return 1;
    }
    return 0;
}
