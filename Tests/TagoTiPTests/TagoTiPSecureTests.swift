import Testing
@testable import TagoTiP

private func hex(_ s: String) -> [UInt8] {
    let digits = Array(s.filter { !$0.isWhitespace }.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

/// TagoTiP/S against the spec's own test vector (TagoTiPs.md §11.1) and the primitives' standard
/// vectors (FIPS 197 for AES, RFC 3610 for CCM, §2.4 for the derived key).
@Suite struct TipSecureTests {
    @Test func theSpecsEnvelopeByteForByte() throws {
        let envelope = try TipSecure.seal(Array("sensor-01|[temp:=32]".utf8), method: .push, counter: 42,
                                          authHash: TipSecure.authHash(token: "ate2bd319014b24e0a8aca9f00aea4c0d0"),
                                          deviceHash: TipSecure.deviceHash(serial: "sensor-01"), key: hex("fe 09 da 81 bc 44 00 ee 12 ab 56 cd 78 ef 90 12"))
        #expect(envelope == hex("""
            00 00 00 00 2a 4d ee dd 7b ab 88 17 ec ab 77 88
            d2 2e b7 37 2f c8 c5 aa 56 d7 55 58 2b ac ea 13
            bb 57 24 93 bb 8c b1 08 03 cf 82 6f db 83 3b 79
            c6
            """))
        let (header, inner) = try TipSecure.open(envelope, key: hex("fe 09 da 81 bc 44 00 ee 12 ab 56 cd 78 ef 90 12"))
        #expect(header.counter == 42 && header.method == .push && String(decoding: inner, as: UTF8.self) == "sensor-01|[temp:=32]")
    }

    @Test func aTamperedEnvelopeOrAWrongKeyFails() throws {
        let key = hex("fe 09 da 81 bc 44 00 ee 12 ab 56 cd 78 ef 90 12")
        let envelope = try TipSecure.seal(Array("s|[a:=1]".utf8), method: .push, counter: 7, authHash: [UInt8](repeating: 1, count: 8), deviceHash: [UInt8](repeating: 2, count: 8), key: key)
        for i in [0, 3, 10, 20, 22, envelope.count - 1] {
            var bad = envelope
            bad[i] ^= 0x01
            #expect(throws: TipError.self) { try TipSecure.open(bad, key: key) }
        }
        var other = key
        other[0] ^= 1
        #expect(throws: TipError.self) { try TipSecure.open(envelope, key: other) }
        #expect(throws: TipError.self) { try TipSecure.open(Array(envelope.prefix(28)), key: key) }
        #expect(throws: TipError.self) { try TipSecure.open(Array("ACK|ERR|auth_failed".utf8) + [UInt8](repeating: 0, count: 10), key: key) }
    }

    @Test func aesAndCCMStandardVectors() {
        #expect(AES128(key: hex("000102030405060708090a0b0c0d0e0f")).encrypt(hex("00112233445566778899aabbccddeeff")) == hex("69c4e0d86a7b0430d8cdb78070b4c55a"))
        // RFC 3610, packet vector #1.
        let sealed = AESCCM(key: hex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")).seal(hex("08090A0B0C0D0E0F101112131415161718191A1B1C1D1E"),
                                                                               nonce: hex("00000003020100A0A1A2A3A4A5"), aad: hex("0001020304050607"))
        #expect(sealed == hex("588C979A61C663D2F066D0C2C0F989806D5F6B61DAC38417E8D12CFDF926E0"))
    }

    @Test func theDerivedKeyOfSection2_4() {
        #expect(TipSecure.deriveKey(token: "ate2bd319014b24e0a8aca9f00aea4c0d0", serial: "sensor-01", length: 32) ==
                hex("e5 05 f0 3c c9 e9 3f db cc 38 28 44 cc a3 e1 7f df 0b b3 13 18 58 53 95 ce aa a3 9a 5d 14 19 64"))
    }
}
