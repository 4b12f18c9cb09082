/// TagoTiP/S (TagoTiPs.md revision C): the binary envelope with AEAD encryption, for links
/// without TLS. Cipher suite 0, AES-128-CCM (8-byte tag, 13-byte nonce, L = 2), which every
/// implementation must support; the other suites are refused as unsupported.
///
/// Envelope: `Flags(1) Counter(4, big-endian) AuthHash(8) DeviceHash(8) Ciphertext Tag(8)`; the
/// 21-byte header is the AAD; the nonce is `Flags 00 00 00 00 DeviceHash[0..<4] Counter`.
public enum TipSecure {
    public enum Method: UInt8, Sendable { case push = 0, pull = 1, ping = 2, ack = 3 }

    /// The envelope's header fields, as read from the wire.
    public struct Header: Sendable, Equatable {
        public var cipher: UInt8
        public var version: UInt8
        public var method: Method
        public var counter: UInt32
        public var authHash: [UInt8]
        public var deviceHash: [UInt8]
    }

    public static let headerBytes = 21
    public static let tagBytes = 8
    /// The largest envelope a server takes with a CCM suite (§5.5).
    public static let maxEnvelopeBytes = Tip.maxFrameBytes + headerBytes + tagBytes

    /// The first 8 bytes of SHA-256 of the serial.
    public static func deviceHash(serial: String) -> [UInt8] { Array(SHA256.hash(Array(serial.utf8)).prefix(8)) }

    /// The first 8 bytes of SHA-256 of the token without `at`.
    public static func authHash(token: String) -> [UInt8] {
        Array(SHA256.hash(Tip.tokenSecret(token)).prefix(8))
    }

    /// Seals a headless inner frame (`serial|body`, or `STATUS|DETAIL` for an ACK).
    public static func seal(_ inner: [UInt8], method: Method, counter: UInt32, authHash: [UInt8], deviceHash: [UInt8], key: [UInt8]) throws(TipError) -> [UInt8] {
        guard key.count == 16 else { throw TipError(.grammar, "AES-128-CCM needs a 16-byte key") }
        guard authHash.count == 8, deviceHash.count == 8 else { throw TipError(.grammar, "the hashes are 8 bytes each") }
        guard inner.count <= Tip.maxFrameBytes else { throw TipError(.tooLarge, "the inner frame has \(inner.count) bytes (at most \(Tip.maxFrameBytes))") }
        var header: [UInt8] = [method.rawValue]
        header += [UInt8(counter >> 24), UInt8(truncatingIfNeeded: counter >> 16), UInt8(truncatingIfNeeded: counter >> 8), UInt8(truncatingIfNeeded: counter)]
        header += authHash + deviceHash
        let sealed = AESCCM(key: key).seal(inner, nonce: nonce(header), aad: header)
        return header + sealed
    }

    /// Reads the header without decrypting (the server's routing step).
    public static func header(_ envelope: [UInt8]) throws(TipError) -> Header {
        guard envelope.count >= headerBytes + tagBytes else { throw TipError(.grammar, "an envelope is at least \(headerBytes + tagBytes) bytes") }
        guard envelope.count <= maxEnvelopeBytes else { throw TipError(.tooLarge, "an envelope of \(envelope.count) bytes (at most \(maxEnvelopeBytes))") }
        let flags = envelope[0]
        guard flags != 0x41 else { throw TipError(.grammar, "0x41 starts a plaintext ACK, not an envelope") }
        guard let method = Method(rawValue: flags & 7) else { throw TipError(.grammar, "an unknown method \(flags & 7) in the flags") }
        let counter = UInt32(envelope[1]) << 24 | UInt32(envelope[2]) << 16 | UInt32(envelope[3]) << 8 | UInt32(envelope[4])
        return Header(cipher: flags >> 5, version: (flags >> 3) & 3, method: method, counter: counter,
                      authHash: Array(envelope[5..<13]), deviceHash: Array(envelope[13..<21]))
    }

    /// Opens an envelope: its header and the inner frame, or an error if the suite or version is
    /// not supported or the tag does not verify (`auth_failed`).
    public static func open(_ envelope: [UInt8], key: [UInt8]) throws(TipError) -> (header: Header, inner: [UInt8]) {
        let h = try header(envelope)
        guard h.version == 0 else { throw TipError(.grammar, "unsupported_version") }
        guard h.cipher == 0 else { throw TipError(.grammar, "unsupported_cipher") }
        guard key.count == 16 else { throw TipError(.grammar, "AES-128-CCM needs a 16-byte key") }
        let head = Array(envelope[0..<headerBytes])
        guard let inner = AESCCM(key: key).open(Array(envelope[headerBytes...]), nonce: nonce(head), aad: head) else {
            throw TipError(.grammar, "auth_failed")
        }
        return (h, inner)
    }

    static func nonce(_ header: [UInt8]) -> [UInt8] {
        [header[0], 0, 0, 0, 0] + header[13..<17] + header[1..<5]
    }

    /// §2.4: a key derived from the token and the serial (HMAC-SHA256), first `length` bytes.
    public static func deriveKey(token: String, serial: String, length: Int = 16) -> [UInt8] {
        var key = Tip.tokenSecret(token)
        if key.count > 64 { key = SHA256.hash(key) }
        key += [UInt8](repeating: 0, count: 64 - key.count)
        let inner = SHA256.hash(key.map { $0 ^ 0x36 } + Array(serial.utf8))
        return Array(SHA256.hash(key.map { $0 ^ 0x5C } + inner).prefix(length))
    }
}

/// AES-128 (FIPS 197), encryption only: CCM needs no decryption of blocks.
struct AES128 {
    private var roundKeys: [UInt32] = []

    init(key: [UInt8]) {
        var w = [UInt32](repeating: 0, count: 44)
        for i in 0..<4 { w[i] = UInt32(key[4 * i]) << 24 | UInt32(key[4 * i + 1]) << 16 | UInt32(key[4 * i + 2]) << 8 | UInt32(key[4 * i + 3]) }
        let rcon: [UInt32] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1B, 0x36]
        for i in 4..<44 {
            var t = w[i - 1]
            if i % 4 == 0 {
                t = (t << 8) | (t >> 24)
                t = Self.subWord(t) ^ (rcon[i / 4 - 1] << 24)
            }
            w[i] = w[i - 4] ^ t
        }
        roundKeys = w
    }

    private static func subWord(_ x: UInt32) -> UInt32 {
        UInt32(sbox[Int(x >> 24)]) << 24 | UInt32(sbox[Int((x >> 16) & 0xFF)]) << 16 | UInt32(sbox[Int((x >> 8) & 0xFF)]) << 8 | UInt32(sbox[Int(x & 0xFF)])
    }

    @inline(__always) private static func xtime(_ b: UInt8) -> UInt8 { (b << 1) ^ ((b & 0x80) != 0 ? 0x1B : 0) }

    func encrypt(_ block: [UInt8]) -> [UInt8] {
        var s = block
        func addRoundKey(_ r: Int) {
            for c in 0..<4 {
                let k = roundKeys[r * 4 + c]
                s[4 * c] ^= UInt8(k >> 24); s[4 * c + 1] ^= UInt8((k >> 16) & 0xFF)
                s[4 * c + 2] ^= UInt8((k >> 8) & 0xFF); s[4 * c + 3] ^= UInt8(k & 0xFF)
            }
        }
        addRoundKey(0)
        for round in 1...10 {
            for i in 0..<16 { s[i] = Self.sbox[Int(s[i])] }
            // ShiftRows (column-major state: byte r of column c is s[4c + r]).
            var t = s
            for c in 0..<4 { for r in 0..<4 { t[4 * c + r] = s[4 * ((c + r) % 4) + r] } }
            s = t
            if round != 10 {
                for c in 0..<4 {
                    let a0 = s[4 * c], a1 = s[4 * c + 1], a2 = s[4 * c + 2], a3 = s[4 * c + 3]
                    let all = a0 ^ a1 ^ a2 ^ a3
                    s[4 * c] = a0 ^ all ^ Self.xtime(a0 ^ a1)
                    s[4 * c + 1] = a1 ^ all ^ Self.xtime(a1 ^ a2)
                    s[4 * c + 2] = a2 ^ all ^ Self.xtime(a2 ^ a3)
                    s[4 * c + 3] = a3 ^ all ^ Self.xtime(a3 ^ a0)
                }
            }
            addRoundKey(round)
        }
        return s
    }

    static let sbox: [UInt8] = [
        0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
        0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
        0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
        0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
        0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
        0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
        0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
        0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
        0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
        0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
        0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
        0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
        0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
        0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
        0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
        0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
    ]
}

/// CCM (RFC 3610, NIST SP 800-38C) over AES-128 with an 8-byte tag and a 13-byte nonce (L = 2).
struct AESCCM {
    let aes: AES128
    static let tagLength = 8

    init(key: [UInt8]) { aes = AES128(key: key) }

    private func mac(_ message: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8] {
        // B0: flags (Adata, M' = (8-2)/2 = 3, L' = 1), nonce, message length (2 bytes).
        var b0: [UInt8] = [0x40 | (3 << 3) | 1] + nonce + [UInt8(message.count >> 8), UInt8(message.count & 0xFF)]
        var x = aes.encrypt(b0)
        var blocks: [UInt8] = [UInt8(aad.count >> 8), UInt8(aad.count & 0xFF)] + aad
        while blocks.count % 16 != 0 { blocks.append(0) }
        var m = message
        while m.count % 16 != 0 { m.append(0) }
        blocks += m
        for i in stride(from: 0, to: blocks.count, by: 16) {
            for j in 0..<16 { x[j] ^= blocks[i + j] }
            x = aes.encrypt(x)
        }
        b0.removeAll()
        return Array(x.prefix(Self.tagLength))
    }

    /// The keystream block `i` (A_i = flags L' = 1, nonce, counter i).
    private func keystream(_ nonce: [UInt8], _ i: Int) -> [UInt8] {
        aes.encrypt([1] + nonce + [UInt8((i >> 8) & 0xFF), UInt8(i & 0xFF)])
    }

    private func ctr(_ data: [UInt8], nonce: [UInt8]) -> [UInt8] {
        var out = data
        var i = 0
        while i < out.count {
            let s = keystream(nonce, i / 16 + 1)
            for j in 0..<min(16, out.count - i) { out[i + j] ^= s[j] }
            i += 16
        }
        return out
    }

    func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8] {
        let t = mac(plaintext, nonce: nonce, aad: aad)
        let s0 = keystream(nonce, 0)
        return ctr(plaintext, nonce: nonce) + (0..<Self.tagLength).map { t[$0] ^ s0[$0] }
    }

    func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard sealed.count >= Self.tagLength else { return nil }
        let body = Array(sealed.dropLast(Self.tagLength))
        let plaintext = ctr(body, nonce: nonce)
        let t = mac(plaintext, nonce: nonce, aad: aad)
        let s0 = keystream(nonce, 0)
        var diff: UInt8 = 0
        for (i, b) in sealed.suffix(Self.tagLength).enumerated() { diff |= b ^ t[i] ^ s0[i] }
        return diff == 0 ? plaintext : nil
    }
}
