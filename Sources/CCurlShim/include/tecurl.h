// CCurlShim: one call that performs an HTTP request with libcurl, because curl_easy_setopt is
// variadic and Swift cannot call it. Every symbol is prefixed `tecurl_`.
#ifndef TECURL_H
#define TECURL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A reusable connection (a curl easy handle: keep-alive, TLS session reuse). Not thread safe:
/// one request at a time. Release with `tecurl_free`. Returns NULL if libcurl cannot start.
void *tecurl_new(void);
void tecurl_free(void *handle);

typedef struct {
    long status;            // HTTP status, 0 if no response
    char *body;             // response body (malloc'd, NUL-terminated), release with tecurl_response_free
    size_t body_length;
    char *headers;          // raw response header lines (malloc'd, NUL-terminated)
    size_t headers_length;
    int curl_code;          // CURLcode, 0 on success
    int transport_kind;     // TECURL_* below when curl_code != 0
    char error[256];        // libcurl's message for curl_code (never contains request headers)
} tecurl_response;

enum {
    TECURL_OK = 0,
    TECURL_TIMEOUT = 1,
    TECURL_DNS = 2,
    TECURL_REFUSED = 3,
    TECURL_TLS = 4,
    TECURL_RESET = 5,
    TECURL_OTHER = 6,
    /// The response was larger than the limits below.
    TECURL_TOO_LARGE = 7,
};

/// The largest response body and header block the agent reads (TagoIO's largest answer, a data
/// query of 10,000 records, is a few MB).
#define TECURL_MAX_BODY ((size_t)16 << 20)
#define TECURL_MAX_HEADERS ((size_t)64 << 10)

/// Performs one request. `headers` are full "Name: value" lines. `ca_file` (may be NULL) adds a
/// CA bundle; certificates are verified unless `insecure` is non-zero. Timeouts in milliseconds.
/// `fresh_connection` non-zero: a new connection, so libcurl cannot silently send the request a
/// second time (it retries once when a reused connection dies before any answer).
/// Returns 0 when a response arrived (whatever its status), otherwise the CURLcode.
int tecurl_perform(void *handle, const char *method, const char *url, const char *const *headers, int header_count,
                   const void *body, size_t body_length, long connect_timeout_ms, long timeout_ms,
                   const char *ca_file, int insecure, int fresh_connection, tecurl_response *out);

void tecurl_response_free(tecurl_response *response);

/// A TCP connection in the handle, with TLS (host name and certificate verified unless `insecure`)
/// when `tls` is non-zero: libcurl's CONNECT_ONLY, for protocols of the agent's own over TCP
/// (TagoTiP's raw binding). Returns 0 or the CURLcode, with `error` and `transport_kind` filled.
int tecurl_stream_open(void *handle, const char *host, int port, int tls, long connect_timeout_ms,
                       const char *ca_file, int insecure, char error[256], int *transport_kind);
/// Sends every byte, waiting at most `timeout_ms` whenever the socket is full. 0 or a CURLcode.
int tecurl_stream_send(void *handle, const void *data, size_t length, long timeout_ms);
/// Bytes received (> 0), 0 when none came within `timeout_ms`, -1 when the connection is gone.
long tecurl_stream_recv(void *handle, void *buffer, size_t capacity, long timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
