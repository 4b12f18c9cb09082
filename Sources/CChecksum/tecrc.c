// CRC-32C for the spool's frames. The instruction computes the same reflected Castagnoli CRC
// as the table (polynomial 0x82F63B78); which one runs is decided once, from what the CPU reports.
#include "tecrc.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++) table[k][i] = table[0][table[k - 1][i] & 0xFF] ^ (table[k - 1][i] >> 8);
}

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24]
            ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^ table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

// A frame's CRC: its first four bytes, then from byte 8 on (the stored CRC between).
static uint32_t crc_table_frame(const uint8_t *p, size_t n) { return crc_table(crc_table(~0u, p, 4), p + 8, n - 8); }

// The instruction in four widths, per architecture; one loop below uses them.
#if defined(__x86_64__)
#include <cpuid.h>
#define CRC_TARGET __attribute__((target("sse4.2")))
#define CRC_8(c, v) ((uint32_t)__builtin_ia32_crc32di((c), (v)))
#define CRC_4(c, v) __builtin_ia32_crc32si((c), (v))
#define CRC_2(c, v) __builtin_ia32_crc32hi((c), (v))
#define CRC_1(c, v) __builtin_ia32_crc32qi((c), (v))
static int cpu_has_crc(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define CRC_TARGET __attribute__((target("+crc")))
#define CRC_8(c, v) __builtin_arm_crc32cd((c), (v))
#define CRC_4(c, v) __builtin_arm_crc32cw((c), (v))
#define CRC_2(c, v) __builtin_arm_crc32ch((c), (v))
#define CRC_1(c, v) __builtin_arm_crc32cb((c), (v))
static int cpu_has_crc(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#endif

#ifdef CRC_TARGET
CRC_TARGET static uint32_t crc_hardware(uint32_t crc, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = CRC_8(crc, v);
        p += 8;
        n -= 8;
    }
    if (n >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        crc = CRC_4(crc, v);
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        crc = CRC_2(crc, v);
        p += 2;
        n -= 2;
    }
    if (n) crc = CRC_1(crc, *p);
    return crc;
}

// `crc_table_frame` with the instruction.
CRC_TARGET static uint32_t crc_hardware_frame(const uint8_t *p, size_t n) {
    uint32_t head;
    memcpy(&head, p, 4);
    return crc_hardware(CRC_4(~0u, head), p + 8, n - 8);
}
#else
static uint32_t crc_hardware(uint32_t crc, const uint8_t *p, size_t n) { return crc_table(crc, p, n); }
static uint32_t crc_hardware_frame(const uint8_t *p, size_t n) { return crc_table_frame(p, n); }
static int cpu_has_crc(void) { return 0; }
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int hardware = 0;
static int once_done = 0;

static void decide(void) {
    hardware = cpu_has_crc();
    build_table();
}

// Decided when the program loads, so that a call (one per spool frame) does not go through
// pthread_once; each call still checks, for a caller that runs before constructors do.
static inline void ensure_decided(void) {
    if (__builtin_expect(!__atomic_load_n(&once_done, __ATOMIC_ACQUIRE), 0)) {
        pthread_once(&once, decide);
        __atomic_store_n(&once_done, 1, __ATOMIC_RELEASE);
    }
}

__attribute__((constructor)) static void decide_at_load(void) { ensure_decided(); }

uint32_t te_crc32c(uint32_t seed, const void *data, size_t n) {
    ensure_decided();
    return ~(hardware ? crc_hardware(~seed, data, n) : crc_table(~seed, data, n));
}

uint32_t te_crc32c_frame(const void *frame, size_t n) {
    ensure_decided();
    const uint8_t *p = frame;
    if (n < 8) return 0;
    return ~(hardware ? crc_hardware_frame(p, n) : crc_table_frame(p, n));
}

uint32_t te_crc32c_table(uint32_t seed, const void *data, size_t n) {
    ensure_decided();
    return ~crc_table(~seed, data, n);
}

int te_crc32c_hardware(void) {
    ensure_decided();
    return hardware;
}
