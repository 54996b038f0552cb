/* statuspage.h - the coordinator's web status page: static HTML, CSS and JavaScript embedded in
 * the binary (web/ in the source tree), served at "/" and "/ui/..." without the token. The page
 * holds no data itself: its script asks for the token once (POST /v1/login, which sets an
 * HttpOnly, SameSite=Strict cookie, see net/http.h) and then polls the authenticated
 * /v1/status and /v1/jobs/ID, so a visitor without the token sees only the login form.
 */
#ifndef TALLY_STATUSPAGE_H
#define TALLY_STATUSPAGE_H

#include "net/http.h"

/* Answers GET `path` when it is one of the page's files: returns 1 with resp filled (200 and
 * the file, with headers that forbid framing, sniffing and any script or style from elsewhere),
 * 0 when the path is not the page's. */
int statuspage_serve(const char *path, http_response *resp);

#endif
