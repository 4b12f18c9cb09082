// See include/tehal.h. Each call goes through `tehal_ioctl`, which retries EINTR and turns the
// result into 0 / -errno, so the Swift side has one convention to handle.
#define _GNU_SOURCE
#include "tehal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include <linux/gpio.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>

const uint64_t TEHAL_I2C_FUNC_I2C = I2C_FUNC_I2C;
const uint64_t TEHAL_I2C_FUNC_SMBUS_QUICK = I2C_FUNC_SMBUS_QUICK;
const uint64_t TEHAL_I2C_FUNC_SMBUS_READ_BYTE = I2C_FUNC_SMBUS_READ_BYTE;
const uint64_t TEHAL_I2C_FUNC_SMBUS_WRITE_BYTE = I2C_FUNC_SMBUS_WRITE_BYTE;
const uint64_t TEHAL_I2C_FUNC_SMBUS_READ_BYTE_DATA = I2C_FUNC_SMBUS_READ_BYTE_DATA;
const uint64_t TEHAL_I2C_FUNC_SMBUS_WRITE_BYTE_DATA = I2C_FUNC_SMBUS_WRITE_BYTE_DATA;
const uint64_t TEHAL_I2C_FUNC_SMBUS_READ_I2C_BLOCK = I2C_FUNC_SMBUS_READ_I2C_BLOCK;
const uint64_t TEHAL_I2C_FUNC_SMBUS_WRITE_I2C_BLOCK = I2C_FUNC_SMBUS_WRITE_I2C_BLOCK;

const uint64_t TEHAL_GPIO_FLAG_ACTIVE_LOW = GPIO_V2_LINE_FLAG_ACTIVE_LOW;
const uint64_t TEHAL_GPIO_FLAG_INPUT = GPIO_V2_LINE_FLAG_INPUT;
const uint64_t TEHAL_GPIO_FLAG_OUTPUT = GPIO_V2_LINE_FLAG_OUTPUT;
const uint64_t TEHAL_GPIO_FLAG_EDGE_RISING = GPIO_V2_LINE_FLAG_EDGE_RISING;
const uint64_t TEHAL_GPIO_FLAG_EDGE_FALLING = GPIO_V2_LINE_FLAG_EDGE_FALLING;
const uint64_t TEHAL_GPIO_FLAG_OPEN_DRAIN = GPIO_V2_LINE_FLAG_OPEN_DRAIN;
const uint64_t TEHAL_GPIO_FLAG_BIAS_PULL_UP = GPIO_V2_LINE_FLAG_BIAS_PULL_UP;
const uint64_t TEHAL_GPIO_FLAG_BIAS_PULL_DOWN = GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN;
const uint64_t TEHAL_GPIO_FLAG_BIAS_DISABLED = GPIO_V2_LINE_FLAG_BIAS_DISABLED;
const uint32_t TEHAL_GPIO_EVENT_RISING = GPIO_V2_LINE_EVENT_RISING_EDGE;
const uint32_t TEHAL_GPIO_EVENT_FALLING = GPIO_V2_LINE_EVENT_FALLING_EDGE;

// The one chokepoint for ioctl: EINTR retried, failure as -errno.
static int tehal_ioctl(int fd, unsigned long request, void *arg) {
    int rc;
    do {
        rc = ioctl(fd, request, arg);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : rc;
}

int tehal_open_chardev(const char *path) {
    int fd;
    do {
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISCHR(st.st_mode)) {
        close(fd);
        return -ENOTTY;
    }
    return fd;
}

int tehal_close(int fd) {
    // close(2) must not be retried on EINTR on Linux: the descriptor is released either way.
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int tehal_i2c_funcs(int fd, uint64_t *funcs) {
    unsigned long f = 0;
    int rc = tehal_ioctl(fd, I2C_FUNCS, &f);
    if (rc < 0) return rc;
    *funcs = f;
    return 0;
}

int tehal_i2c_set_address(int fd, uint16_t address, int force) {
    int rc;
    do {
        rc = ioctl(fd, force ? I2C_SLAVE_FORCE : I2C_SLAVE, (unsigned long)address);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

int tehal_i2c_write_read(int fd, uint16_t address, const uint8_t *wbuf, uint16_t wlen,
                         uint8_t *rbuf, uint16_t rlen) {
    struct i2c_msg msgs[2];
    uint32_t n = 0;
    if (wlen > 0 || rlen == 0) {
        msgs[n].addr = address;
        msgs[n].flags = 0;
        msgs[n].len = wlen;
        msgs[n].buf = (uint8_t *)wbuf;  // the kernel does not write to a write message
        n++;
    }
    if (rlen > 0) {
        msgs[n].addr = address;
        msgs[n].flags = I2C_M_RD;
        msgs[n].len = rlen;
        msgs[n].buf = rbuf;
        n++;
    }
    struct i2c_rdwr_ioctl_data data = {.msgs = msgs, .nmsgs = n};
    int rc = tehal_ioctl(fd, I2C_RDWR, &data);
    if (rc < 0) return rc;
    return rc == (int)n ? 0 : -EIO;  // the kernel returns the number of messages transferred
}

long tehal_i2c_write(int fd, const uint8_t *buf, size_t len) {
    ssize_t rc;
    do {
        rc = write(fd, buf, len);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : (long)rc;
}

long tehal_i2c_read(int fd, uint8_t *buf, size_t len) {
    ssize_t rc;
    do {
        rc = read(fd, buf, len);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : (long)rc;
}

int tehal_gpio_chip_info(int chip_fd, tehal_gpio_chipinfo *out) {
    struct gpiochip_info info;
    memset(&info, 0, sizeof info);
    int rc = tehal_ioctl(chip_fd, GPIO_GET_CHIPINFO_IOCTL, &info);
    if (rc < 0) return rc;
    memcpy(out->name, info.name, sizeof out->name);
    memcpy(out->label, info.label, sizeof out->label);
    out->name[sizeof out->name - 1] = 0;
    out->label[sizeof out->label - 1] = 0;
    out->lines = info.lines;
    return 0;
}

int tehal_gpio_line_info(int chip_fd, uint32_t offset, tehal_gpio_lineinfo *out) {
    struct gpio_v2_line_info info;
    memset(&info, 0, sizeof info);
    info.offset = offset;
    int rc = tehal_ioctl(chip_fd, GPIO_V2_GET_LINEINFO_IOCTL, &info);
    if (rc < 0) return rc;
    memcpy(out->name, info.name, sizeof out->name);
    memcpy(out->consumer, info.consumer, sizeof out->consumer);
    out->name[sizeof out->name - 1] = 0;
    out->consumer[sizeof out->consumer - 1] = 0;
    out->offset = info.offset;
    out->flags = info.flags;
    return 0;
}

int tehal_gpio_request(int chip_fd, const uint32_t *offsets, uint32_t count, uint64_t flags,
                       uint32_t debounce_us, uint64_t output_values, const char *consumer,
                       uint32_t event_buffer_size) {
    if (count == 0 || count > GPIO_V2_LINES_MAX) return -EINVAL;
    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof req);
    memcpy(req.offsets, offsets, count * sizeof offsets[0]);
    if (consumer) strncpy(req.consumer, consumer, sizeof req.consumer - 1);
    req.num_lines = count;
    req.event_buffer_size = event_buffer_size;
    req.config.flags = flags;
    uint64_t all = count == 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
    uint32_t a = 0;
    if (debounce_us > 0) {
        req.config.attrs[a].attr.id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE;
        req.config.attrs[a].attr.debounce_period_us = debounce_us;
        req.config.attrs[a].mask = all;
        a++;
    }
    if (flags & GPIO_V2_LINE_FLAG_OUTPUT) {
        req.config.attrs[a].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
        req.config.attrs[a].attr.values = output_values;
        req.config.attrs[a].mask = all;
        a++;
    }
    req.config.num_attrs = a;
    int rc = tehal_ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &req);
    if (rc < 0) return rc;
    return req.fd;
}

int tehal_gpio_get_values(int line_fd, uint64_t mask, uint64_t *bits) {
    struct gpio_v2_line_values v = {.bits = 0, .mask = mask};
    int rc = tehal_ioctl(line_fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v);
    if (rc < 0) return rc;
    *bits = v.bits;
    return 0;
}

int tehal_gpio_set_values(int line_fd, uint64_t mask, uint64_t bits) {
    struct gpio_v2_line_values v = {.bits = bits, .mask = mask};
    return tehal_ioctl(line_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v);
}

int tehal_gpio_read_events(int line_fd, tehal_gpio_event *events, uint32_t max, int timeout_ms) {
    if (max == 0) return 0;
    struct pollfd pfd = {.fd = line_fd, .events = POLLIN};
    int rc;
    do {
        rc = poll(&pfd, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -errno;
    if (rc == 0) return 0;
    struct gpio_v2_line_event raw[16];
    uint32_t want = max < 16 ? max : 16;
    ssize_t n;
    do {
        n = read(line_fd, raw, want * sizeof raw[0]);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    uint32_t got = (uint32_t)(n / (ssize_t)sizeof raw[0]);
    for (uint32_t i = 0; i < got; i++) {
        events[i].timestamp_ns = raw[i].timestamp_ns;
        events[i].id = raw[i].id;
        events[i].offset = raw[i].offset;
        events[i].seqno = raw[i].seqno;
        events[i].line_seqno = raw[i].line_seqno;
    }
    return (int)got;
}

int tehal_clock_synchronised(void) {
    struct timex t;
    memset(&t, 0, sizeof t);
    int state = adjtimex(&t);
    if (state < 0) return -errno;
    return (state != TIME_ERROR && !(t.status & STA_UNSYNC)) ? 1 : 0;
}

int tehal_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int fd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, fd);
}

int tehal_i2c_smbus(int fd, int read, uint8_t command, int size, uint8_t *data, uint8_t *length) {
    // i2c-tools' i2c_smbus_access: one I2C_SMBUS ioctl. `data` holds up to 32 bytes (block
    // transfers: *length of them; byte and byte-data: one).
    union i2c_smbus_data buffer;
    memset(&buffer, 0, sizeof buffer);
    struct i2c_smbus_ioctl_data args = {
        .read_write = read ? I2C_SMBUS_READ : I2C_SMBUS_WRITE,
        .command = command,
        .size = 0,
        .data = &buffer,
    };
    switch (size) {
    case TEHAL_SMBUS_QUICK:
        args.size = I2C_SMBUS_QUICK;
        args.data = NULL;
        break;
    case TEHAL_SMBUS_BYTE:
        args.size = I2C_SMBUS_BYTE;
        if (!read) args.data = NULL;  // a write byte sends `command` alone
        break;
    case TEHAL_SMBUS_BYTE_DATA:
        args.size = I2C_SMBUS_BYTE_DATA;
        if (!read) buffer.byte = data[0];
        break;
    case TEHAL_SMBUS_I2C_BLOCK:
        if (*length == 0 || *length > I2C_SMBUS_BLOCK_MAX) return -EINVAL;
        args.size = I2C_SMBUS_I2C_BLOCK_DATA;
        buffer.block[0] = *length;
        if (!read) memcpy(&buffer.block[1], data, *length);
        break;
    default:
        return -EINVAL;
    }
    int rc = tehal_ioctl(fd, I2C_SMBUS, &args);
    if (rc < 0) return rc;
    if (read) {
        if (size == TEHAL_SMBUS_BYTE || size == TEHAL_SMBUS_BYTE_DATA) data[0] = buffer.byte;
        if (size == TEHAL_SMBUS_I2C_BLOCK) {
            uint8_t n = buffer.block[0] < *length ? buffer.block[0] : *length;
            memcpy(data, &buffer.block[1], n);
            *length = n;
        }
    }
    return 0;
}
