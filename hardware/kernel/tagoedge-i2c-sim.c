// SPDX-License-Identifier: GPL-2.0
/*
 * tagoedge-i2c-sim: an I2C adapter with plain I2C transfers (I2C_FUNC_I2C), for scripts/kernel-test.
 * The kernel's own test adapter, i2c-stub, offers SMBus only; this one answers I2C_RDWR messages
 * (and SMBus, which the I2C core emulates over them) as two chips do at the register level:
 *
 *   0x76  a BME280: 256 registers behind a register pointer. A write's first byte sets the pointer;
 *         the bytes after it are (register, value) pairs, as the datasheet's write protocol has
 *         them; a read returns registers from the pointer on, incrementing. Seeded from user space
 *         (i2cset) with a real chip's image.
 *   0x44  an SHT3x: a two-byte command; 0x2400/0x240B/0x2416 (single shot) makes the next read of
 *         6 bytes return 25.00 °C and 50.00 %RH with their CRCs (CRC-8, 0x31, init 0xFF); 0xF32D
 *         (read status) makes it return the status word after a reset (0x8010) and its CRC, which
 *         `tagoedge scan` identifies the chip by; a read with nothing pending is not
 *         acknowledged, as the chip does.
 *
 * Any other address does not acknowledge (-ENXIO). Zero-length messages probe an address.
 */
#include <linux/i2c.h>
#include <linux/module.h>
#include <linux/mutex.h>

#define BME280_ADDR 0x76
#define SHT3X_ADDR 0x44

static DEFINE_MUTEX(sim_lock);
static u8 bme280_regs[256];
static u8 bme280_pointer;
static int sht3x_pending;

static u8 sht3x_crc(const u8 *data, int len)
{
	u8 crc = 0xff;
	int i, bit;

	for (i = 0; i < len; i++) {
		crc ^= data[i];
		for (bit = 0; bit < 8; bit++)
			crc = (crc & 0x80) ? (u8)((crc << 1) ^ 0x31) : (u8)(crc << 1);
	}
	return crc;
}

static int bme280_xfer(struct i2c_msg *msg)
{
	int i;

	if (msg->flags & I2C_M_RD) {
		for (i = 0; i < msg->len; i++)
			msg->buf[i] = bme280_regs[bme280_pointer++];
		return 0;
	}
	if (msg->len == 0)
		return 0;
	bme280_pointer = msg->buf[0];
	if (msg->len >= 2)
		bme280_regs[msg->buf[0]] = msg->buf[1];
	for (i = 2; i + 1 < msg->len; i += 2)
		bme280_regs[msg->buf[i]] = msg->buf[i + 1];
	return 0;
}

static int sht3x_xfer(struct i2c_msg *msg)
{
	/* 25.00 °C: raw 0x6666; 50.00 %RH: raw 0x8000. */
	u8 data[6] = { 0x66, 0x66, 0, 0x80, 0x00, 0 };
	u16 command;

	if (msg->flags & I2C_M_RD) {
		if (msg->len == 0)
			return 0;
		if (!sht3x_pending)
			return -ENXIO;
		if (sht3x_pending == 2) {
			/* Status after a reset: alert pending (bit 15), system reset detected (bit 4). */
			data[0] = 0x80;
			data[1] = 0x10;
		}
		data[2] = sht3x_crc(data, 2);
		data[5] = sht3x_crc(data + 3, 2);
		memcpy(msg->buf, data, min_t(u16, msg->len, sizeof(data)));
		sht3x_pending = 0;
		return 0;
	}
	if (msg->len == 0)
		return 0;
	if (msg->len != 2)
		return -EIO;
	command = (u16)msg->buf[0] << 8 | msg->buf[1];
	if (command == 0x2400 || command == 0x240b || command == 0x2416)
		sht3x_pending = 1;
	else if (command == 0xf32d)
		sht3x_pending = 2;
	return 0;
}

static int sim_xfer(struct i2c_adapter *adapter, struct i2c_msg *msgs, int num)
{
	int i, rc = 0;

	mutex_lock(&sim_lock);
	for (i = 0; i < num && rc == 0; i++) {
		switch (msgs[i].addr) {
		case BME280_ADDR:
			rc = bme280_xfer(&msgs[i]);
			break;
		case SHT3X_ADDR:
			rc = sht3x_xfer(&msgs[i]);
			break;
		default:
			rc = -ENXIO;
		}
	}
	mutex_unlock(&sim_lock);
	return rc ? rc : num;
}

static u32 sim_functionality(struct i2c_adapter *adapter)
{
	return I2C_FUNC_I2C | I2C_FUNC_SMBUS_EMUL;
}

static const struct i2c_algorithm sim_algorithm = {
	.master_xfer = sim_xfer,
	.functionality = sim_functionality,
};

static struct i2c_adapter sim_adapter = {
	.owner = THIS_MODULE,
	.class = I2C_CLASS_HWMON,
	.algo = &sim_algorithm,
	.name = "tagoedge-i2c-sim",
};

static int __init sim_init(void)
{
	return i2c_add_adapter(&sim_adapter);
}

static void __exit sim_exit(void)
{
	i2c_del_adapter(&sim_adapter);
}

module_init(sim_init);
module_exit(sim_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("An I2C adapter with plain transfers and two simulated chips, for TagoEdge's kernel test");
