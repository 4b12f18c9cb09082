#ifndef TECRC_H
#define TECRC_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of n bytes, continuing from `seed` (0 to start), as
/// EdgeCore's Checksum.crc32c computes it: with the CPU's CRC32C instruction where it has one
/// (x86-64 SSE4.2, AArch64 CRC extension), table-driven otherwise.
uint32_t te_crc32c(uint32_t seed, const void *data, size_t n);

/// The CRC of a spool frame of n bytes (n >= 8): its first 4 bytes, then bytes 8..<n (the CRC
/// field itself, bytes 4..<8, left out), in one call.
uint32_t te_crc32c_frame(const void *frame, size_t n);

/// The same CRC, always from the table (for tests on machines with the instruction).
uint32_t te_crc32c_table(uint32_t seed, const void *data, size_t n);

/// 1 if te_crc32c uses the CPU's instruction on this machine.
int te_crc32c_hardware(void);

#endif
