// The baseline for `tagoedge-bench mqtt`: the smallest C program that does the MQTT uplink's
// network work with libmosquitto directly. Publishes the payload in FILE COUNT times to TOPIC
// with QoS 1, at most INFLIGHT unacknowledged, and waits for every PUBACK. With a last argument
// `quickack` it sets TCP_QUICKACK after every loop, as the Swift MQTTConnection does.
//   mqtt_pub HOST PORT TOPIC FILE COUNT INFLIGHT [quickack]  -> prints "seconds <s>" and "cpu <s>"
#include <mosquitto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int acked = 0;
static void on_publish(struct mosquitto *m, void *obj, int mid) { (void)m; (void)obj; (void)mid; acked++; }

static double clock_seconds(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static double now(void) { return clock_seconds(CLOCK_MONOTONIC); }

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) { fprintf(stderr, "usage: mqtt_pub HOST PORT TOPIC FILE COUNT INFLIGHT [quickack]\n"); return 2; }
    int quickack = argc == 8 && strcmp(argv[7], "quickack") == 0;
    FILE *f = fopen(argv[4], "rb");
    if (!f) { perror(argv[4]); return 1; }
    static char payload[1 << 20];
    size_t len = fread(payload, 1, sizeof payload, f);
    fclose(f);
    int count = atoi(argv[5]), inflight = atoi(argv[6]);
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new("c-baseline", true, NULL);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    if (mosquitto_connect(m, argv[1], atoi(argv[2]), 60) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect failed\n"); return 1; }
    double t0 = now(), c0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    int sent = 0;
    while (acked < count) {
        while (sent < count && sent - acked < inflight) {
            if (mosquitto_publish(m, NULL, argv[3], (int)len, payload, 1, false) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "publish failed\n"); return 1; }
            sent++;
        }
        if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connection lost\n"); return 1; }
        if (quickack) {
            int on = 1;
            setsockopt(mosquitto_socket(m), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
        }
    }
    double t1 = now(), c1 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    printf("seconds %.6f\ncpu %.6f\n", t1 - t0, c1 - c0);
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
