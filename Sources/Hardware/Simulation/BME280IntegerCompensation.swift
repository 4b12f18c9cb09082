/// The Bosch BME280 datasheet's fixed-point compensation (section 4.2.3, the 32-bit temperature
/// and humidity and 64-bit pressure routines), written with C's wrapping arithmetic.
///
/// The simulated chip uses it to turn wanted physical values into raw ADC counts; tests use it as
/// an independent reference for the driver, which uses the datasheet's floating-point formulas.
public struct BME280IntegerCompensation: Sendable {
    public var t1: UInt16, t2: Int16, t3: Int16
    public var p1: UInt16, p2: Int16, p3: Int16, p4: Int16, p5: Int16, p6: Int16, p7: Int16, p8: Int16, p9: Int16
    public var h1: UInt8, h2: Int16, h3: UInt8, h4: Int16, h5: Int16, h6: Int8

    /// Reads the trimming parameters from a register map (0x88…0xA1 and 0xE1…0xE7).
    public init(registers r: [UInt8]) {
        func u16(_ a: Int) -> UInt16 { UInt16(r[a]) | UInt16(r[a + 1]) << 8 }
        func s16(_ a: Int) -> Int16 { Int16(bitPattern: u16(a)) }
        t1 = u16(0x88); t2 = s16(0x8A); t3 = s16(0x8C)
        p1 = u16(0x8E); p2 = s16(0x90); p3 = s16(0x92); p4 = s16(0x94); p5 = s16(0x96)
        p6 = s16(0x98); p7 = s16(0x9A); p8 = s16(0x9C); p9 = s16(0x9E)
        h1 = r[0xA1]; h2 = s16(0xE1); h3 = r[0xE3]
        h4 = (Int16(bitPattern: UInt16(r[0xE4]) << 4 | UInt16(r[0xE5] & 0x0F)) << 4) >> 4
        h5 = (Int16(bitPattern: UInt16(r[0xE6]) << 4 | UInt16(r[0xE5] >> 4)) << 4) >> 4
        h6 = Int8(bitPattern: r[0xE7])
    }

    /// Temperature in 0.01 °C and t_fine, from the 20-bit raw value.
    public func temperature(adc: Int32) -> (centiCelsius: Int32, tFine: Int32) {
        let var1 = (((adc >> 3) &- (Int32(t1) << 1)) &* Int32(t2)) >> 11
        let d = (adc >> 4) &- Int32(t1)
        let var2 = (((d &* d) >> 12) &* Int32(t3)) >> 14
        let tFine = var1 &+ var2
        return ((tFine &* 5 &+ 128) >> 8, tFine)
    }

    /// Pressure in Pa as Q24.8 (divide by 256), from the 20-bit raw value; 0 when undefined.
    public func pressure(adc: Int32, tFine: Int32) -> UInt32 {
        var var1 = Int64(tFine) &- 128_000
        var var2 = var1 &* var1 &* Int64(p6)
        var2 = var2 &+ ((var1 &* Int64(p5)) << 17)
        var2 = var2 &+ (Int64(p4) << 35)
        var1 = ((var1 &* var1 &* Int64(p3)) >> 8) &+ ((var1 &* Int64(p2)) << 12)
        var1 = (((Int64(1) << 47) &+ var1) &* Int64(p1)) >> 33
        if var1 == 0 { return 0 }
        var p = 1_048_576 &- Int64(adc)
        p = (((p << 31) &- var2) &* 3125) / var1
        var1 = (Int64(p9) &* (p >> 13) &* (p >> 13)) >> 25
        var2 = (Int64(p8) &* p) >> 19
        p = ((p &+ var1 &+ var2) >> 8) &+ (Int64(p7) << 4)
        return UInt32(truncatingIfNeeded: p)
    }

    /// Relative humidity in %RH as Q22.10 (divide by 1024), from the 16-bit raw value.
    public func humidity(adc: Int32, tFine: Int32) -> UInt32 {
        var v = tFine &- 76_800
        let a = ((adc << 14) &- (Int32(h4) << 20) &- (Int32(h5) &* v) &+ 16_384) >> 15
        let b = ((((((v &* Int32(h6)) >> 10) &* (((v &* Int32(h3)) >> 11) &+ 32_768)) >> 10) &+ 2_097_152) &* Int32(h2) &+ 8192) >> 14
        v = a &* b
        v = v &- (((((v >> 15) &* (v >> 15)) >> 7) &* Int32(h1)) >> 4)
        v = min(max(v, 0), 419_430_400)
        return UInt32(v >> 12)
    }

    /// The raw temperature count that gives `celsius` (the closest the 20-bit ADC can reach).
    public func rawTemperature(for celsius: Double) -> Int32 {
        search(0, (1 << 20) - 1, increasing: true) { Double(temperature(adc: $0).centiCelsius) / 100 - celsius }
    }

    /// The raw pressure count that gives `pascal` at `tFine`.
    public func rawPressure(for pascal: Double, tFine: Int32) -> Int32 {
        search(0, (1 << 20) - 1, increasing: false) { Double(pressure(adc: $0, tFine: tFine)) / 256 - pascal }
    }

    /// The raw humidity count that gives `percent` at `tFine`.
    public func rawHumidity(for percent: Double, tFine: Int32) -> Int32 {
        search(0, (1 << 16) - 1, increasing: true) { Double(humidity(adc: $0, tFine: tFine)) / 1024 - percent }
    }

    /// Binary search for the raw value whose output is closest to the target (f(raw) = output − target).
    private func search(_ lo0: Int32, _ hi0: Int32, increasing: Bool, _ f: (Int32) -> Double) -> Int32 {
        var lo = lo0, hi = hi0
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2
            let below = f(mid) < 0
            if below == increasing { lo = mid } else { hi = mid }
        }
        return abs(f(lo)) <= abs(f(hi)) ? lo : hi
    }
}
