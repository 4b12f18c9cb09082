// CLinuxHAL: a thin shim over the Linux i2c-dev and GPIO character device (uAPI v2) interfaces.
//
// Every function returns 0 (or a non-negative count / file descriptor) on success and -errno on
// failure. Calls interrupted by a signal are retried (EINTR). No function allocates, logs or keeps
// state: policy belongs to the Swift layer. Every symbol is prefixed `tehal_`.
#ifndef TEHAL_H
#define TEHAL_H

#include <stddef.h>
#include <stdint.h>
#include <spawn.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- files -------------------------------------------------------------------------------------

/// Opens `path` read-write with O_CLOEXEC and checks that it is a character device.
/// Returns the descriptor (owned by the caller, release with `tehal_close`), or -errno;
/// -ENOTTY when the path exists but is not a character device.
int tehal_open_chardev(const char *path);

/// Closes a descriptor returned by this shim. Returns 0 or -errno.
int tehal_close(int fd);

// ---- i2c-dev -----------------------------------------------------------------------------------

/// I2C_FUNCS: the adapter's functionality bits, stored in `*funcs`.
int tehal_i2c_funcs(int fd, uint64_t *funcs);

/// I2C_SLAVE (or I2C_SLAVE_FORCE when `force` is non-zero): the address used by plain read/write.
int tehal_i2c_set_address(int fd, uint16_t address, int force);

/// I2C_RDWR: writes `wlen` bytes, then (repeated start, no stop) reads `rlen` bytes.
/// Either length may be 0 (but not both); a zero-length write alone is an SMBus quick write.
int tehal_i2c_write_read(int fd, uint16_t address, const uint8_t *wbuf, uint16_t wlen,
                         uint8_t *rbuf, uint16_t rlen);

/// Plain write(2) to the address set with `tehal_i2c_set_address`. Returns bytes written or -errno.
long tehal_i2c_write(int fd, const uint8_t *buf, size_t len);

/// Plain read(2) from the address set with `tehal_i2c_set_address`. Returns bytes read or -errno.
long tehal_i2c_read(int fd, uint8_t *buf, size_t len);

/// Functionality bits (linux/i2c.h), exported because Swift cannot see the macros.
extern const uint64_t TEHAL_I2C_FUNC_I2C;
extern const uint64_t TEHAL_I2C_FUNC_SMBUS_QUICK;
extern const uint64_t TEHAL_I2C_FUNC_SMBUS_READ_BYTE;
extern const uint64_t TEHAL_I2C_FUNC_SMBUS_WRITE_BYTE;
extern const uint64_t TEHAL_I2C_FUNC_SMBUS_READ_BYTE_DATA;
extern const uint64_t TEHAL_I2C_FUNC_SMBUS_WRITE_BYTE_DATA;
extern const uint64_t TEHAL_I2C_FUNC_SMBUS_READ_I2C_BLOCK;
extern const uint64_t TEHAL_I2C_FUNC_SMBUS_WRITE_I2C_BLOCK;

/// SMBus transfer sizes for `tehal_i2c_smbus`.
enum { TEHAL_SMBUS_QUICK = 0, TEHAL_SMBUS_BYTE = 1, TEHAL_SMBUS_BYTE_DATA = 2, TEHAL_SMBUS_I2C_BLOCK = 8 };

/// One SMBus transfer (the I2C_SMBUS ioctl) to the address set with `tehal_i2c_set_address`:
/// quick (the R/W bit alone), byte, byte data, or I2C block data (up to 32 bytes, *length).
/// For adapters without plain I2C (I2C_FUNC_I2C), such as i2c-stub and many SMBus controllers.
/// Returns 0 or -errno.
int tehal_i2c_smbus(int fd, int read, uint8_t command, int size, uint8_t *data, uint8_t *length);

// ---- GPIO character device, uAPI v2 ------------------------------------------------------------

typedef struct {
    char name[32];
    char label[32];
    uint32_t lines;
} tehal_gpio_chipinfo;

/// GPIO_GET_CHIPINFO_IOCTL on a /dev/gpiochipN descriptor.
int tehal_gpio_chip_info(int chip_fd, tehal_gpio_chipinfo *out);

typedef struct {
    char name[32];
    char consumer[32];
    uint32_t offset;
    uint64_t flags;
} tehal_gpio_lineinfo;

/// GPIO_V2_GET_LINEINFO_IOCTL for one line offset.
int tehal_gpio_line_info(int chip_fd, uint32_t offset, tehal_gpio_lineinfo *out);

/// GPIO_V2_GET_LINE_IOCTL: requests `count` lines (at most 64) with `flags` (TEHAL_GPIO_FLAG_*).
/// `debounce_us` > 0 adds a debounce attribute for all lines; `output_values` (bit i = line i)
/// sets initial values when the flags include OUTPUT. Returns the line request descriptor
/// (owned by the caller, release with `tehal_close`) or -errno.
int tehal_gpio_request(int chip_fd, const uint32_t *offsets, uint32_t count, uint64_t flags,
                       uint32_t debounce_us, uint64_t output_values, const char *consumer,
                       uint32_t event_buffer_size);

/// GPIO_V2_LINE_GET_VALUES_IOCTL: bits of the lines selected by `mask` (bit i = i-th requested line).
int tehal_gpio_get_values(int line_fd, uint64_t mask, uint64_t *bits);

/// GPIO_V2_LINE_SET_VALUES_IOCTL.
int tehal_gpio_set_values(int line_fd, uint64_t mask, uint64_t bits);

typedef struct {
    uint64_t timestamp_ns;  // kernel timestamp (CLOCK_MONOTONIC unless EVENT_CLOCK_REALTIME was asked)
    uint32_t id;            // TEHAL_GPIO_EVENT_RISING or TEHAL_GPIO_EVENT_FALLING
    uint32_t offset;        // line offset on the chip
    uint32_t seqno;         // sequence number across all lines of the request
    uint32_t line_seqno;    // sequence number on this line
} tehal_gpio_event;

/// Waits up to `timeout_ms` (0: do not wait, -1: forever) for edge events and reads at most `max`.
/// Returns the number read (0 on timeout) or -errno.
int tehal_gpio_read_events(int line_fd, tehal_gpio_event *events, uint32_t max, int timeout_ms);

extern const uint64_t TEHAL_GPIO_FLAG_ACTIVE_LOW;
extern const uint64_t TEHAL_GPIO_FLAG_INPUT;
extern const uint64_t TEHAL_GPIO_FLAG_OUTPUT;
extern const uint64_t TEHAL_GPIO_FLAG_EDGE_RISING;
extern const uint64_t TEHAL_GPIO_FLAG_EDGE_FALLING;
extern const uint64_t TEHAL_GPIO_FLAG_OPEN_DRAIN;
extern const uint64_t TEHAL_GPIO_FLAG_BIAS_PULL_UP;
extern const uint64_t TEHAL_GPIO_FLAG_BIAS_PULL_DOWN;
extern const uint64_t TEHAL_GPIO_FLAG_BIAS_DISABLED;
extern const uint32_t TEHAL_GPIO_EVENT_RISING;
extern const uint32_t TEHAL_GPIO_EVENT_FALLING;

// ---- clock ---------------------------------------------------------------------------------------

/// 1 when the kernel says the system clock is synchronised (adjtimex: STA_UNSYNC clear, as set by
/// systemd-timesyncd, chrony or ntpd), 0 when not, -errno on failure.
int tehal_clock_synchronised(void);

#ifdef __cplusplus
}
#endif
/// Adds "close every descriptor from `fd` up" to a spawn's file actions (glibc 2.34+, which Swift
/// cannot see without _GNU_SOURCE). Returns 0 or an errno.
int tehal_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int fd);

#endif
