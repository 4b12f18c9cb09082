#include "tecurl.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

// curl_global_init is not thread safe: run it exactly once.
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct {
    char *data;
    size_t length;
    size_t capacity;
    size_t limit;    // bytes kept at most; more aborts the transfer
    int overflowed;
} buffer;

// A body or header block larger than its limit aborts the transfer (CURLE_WRITE_ERROR): a hostile
// or broken server, or a small gzip body that decompresses to gigabytes, cannot grow the agent.
static size_t append(char *ptr, size_t size, size_t nmemb, void *userdata) {
    buffer *b = (buffer *)userdata;
    size_t n = size * nmemb;
    if (n > b->limit || b->length > b->limit - n) {
        b->overflowed = 1;
        return 0;
    }
    if (b->length + n + 1 > b->capacity) {
        size_t cap = b->capacity ? b->capacity : 4096;
        while (cap < b->length + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return 0;  // makes curl fail with CURLE_WRITE_ERROR
        b->data = p;
        b->capacity = cap;
    }
    memcpy(b->data + b->length, ptr, n);
    b->length += n;
    b->data[b->length] = 0;
    return n;
}

void *tecurl_new(void) {
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) return NULL;
    return curl_easy_init();
}

void tecurl_free(void *handle) {
    if (handle) curl_easy_cleanup((CURL *)handle);
}

static int kind_of(CURLcode rc) {
    switch (rc) {
    case CURLE_OK: return TECURL_OK;
    case CURLE_OPERATION_TIMEDOUT: return TECURL_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return TECURL_DNS;
    case CURLE_COULDNT_CONNECT: return TECURL_REFUSED;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: return TECURL_TLS;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return TECURL_RESET;
    default: return TECURL_OTHER;
    }
}

int tecurl_perform(void *handle, const char *method, const char *url, const char *const *headers, int header_count,
                   const void *body, size_t body_length, long connect_timeout_ms, long timeout_ms,
                   const char *ca_file, int insecure, int fresh_connection, tecurl_response *out) {
    memset(out, 0, sizeof *out);
    CURL *curl = (CURL *)handle;
    buffer body_buffer = {.limit = TECURL_MAX_BODY}, header_buffer = {.limit = TECURL_MAX_HEADERS};
    struct curl_slist *list = NULL;
    for (int i = 0; i < header_count; i++) {
        struct curl_slist *next = curl_slist_append(list, headers[i]);
        if (!next) break;
        list = next;
    }
    // Options are reset each time: the handle keeps only its connection cache.
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    // A cached connection idle longer than this is not reused: servers close idle keep-alive
    // connections (the emulator after 30 s, common proxies after 60-75 s), and a request sent on
    // one the server is closing gets an empty reply; for a request sent once (a device created)
    // that is a failure, not a retry.
    curl_easy_setopt(curl, CURLOPT_MAXAGE_CONN, 20L);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
    if (ca_file) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    if (fresh_connection) curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    if (body && body_length > 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_length);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_buffer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, append);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &header_buffer);
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);

    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(list);
    out->curl_code = (int)rc;
    out->transport_kind = kind_of(rc);
    if (rc != CURLE_OK) {
        const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        if (body_buffer.overflowed) msg = "the response body is larger than the 16 MiB the agent reads; refused";
        if (header_buffer.overflowed) msg = "the response headers are larger than the 64 KiB the agent reads; refused";
        if (body_buffer.overflowed || header_buffer.overflowed) out->transport_kind = TECURL_TOO_LARGE;
        strncpy(out->error, msg, sizeof out->error - 1);
        free(body_buffer.data);
        free(header_buffer.data);
        return (int)rc;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = body_buffer.data;
    out->body_length = body_buffer.length;
    out->headers = header_buffer.data;
    out->headers_length = header_buffer.length;
    return 0;
}

void tecurl_response_free(tecurl_response *response) {
    free(response->body);
    free(response->headers);
    response->body = NULL;
    response->headers = NULL;
}

// MARK: streams (TagoTiP's raw binding over TCP, with or without TLS)

#include <poll.h>

int tecurl_stream_open(void *handle, const char *host, int port, int tls, long connect_timeout_ms,
                       const char *ca_file, int insecure, char error[256], int *transport_kind) {
    CURL *h = (CURL *)handle;
    char url[512];
    // An https URL makes libcurl do the TLS handshake and verify the host name; CONNECT_ONLY
    // stops it there, before any HTTP.
    if (snprintf(url, sizeof url, "%s://%s:%d/", tls ? "https" : "http", host, port) >= (int)sizeof url) {
        snprintf(error, 256, "host name too long");
        *transport_kind = TECURL_OTHER;
        return CURLE_URL_MALFORMAT;
    }
    curl_easy_reset(h);
    error[0] = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    if (insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK && error[0] == 0) snprintf(error, 256, "%s", curl_easy_strerror(rc));
    *transport_kind = kind_of(rc);
    return (int)rc;
}

static int stream_wait(CURL *h, short events, long timeout_ms) {
    curl_socket_t fd;
    if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD) return -1;
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do { n = poll(&p, 1, (int)timeout_ms); } while (n < 0 && errno == EINTR);
    return n;
}

int tecurl_stream_send(void *handle, const void *data, size_t length, long timeout_ms) {
    CURL *h = (CURL *)handle;
    size_t done = 0;
    while (done < length) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(h, (const char *)data + done, length - done, &n);
        if (rc == CURLE_AGAIN) {
            if (stream_wait(h, POLLOUT, timeout_ms) <= 0) return CURLE_OPERATION_TIMEDOUT;
            continue;
        }
        if (rc != CURLE_OK) return (int)rc;
        done += n;
    }
    return 0;
}

long tecurl_stream_recv(void *handle, void *buffer, size_t capacity, long timeout_ms) {
    CURL *h = (CURL *)handle;
    for (int tries = 0; tries < 2; tries++) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(h, buffer, capacity, &n);
        if (rc == CURLE_OK) return n > 0 ? (long)n : -1;  // 0 bytes: the peer closed
        if (rc != CURLE_AGAIN) return -1;
        if (tries == 0) {
            int w = stream_wait(h, POLLIN, timeout_ms);
            if (w < 0) return -1;
            if (w == 0) return 0;
        }
    }
    return 0;
}
