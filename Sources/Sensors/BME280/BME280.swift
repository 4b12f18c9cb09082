import EdgeCore

/// Bosch BME280 (and BMP280, without humidity) over I2C, in forced mode: each `read()` triggers
/// one conversion, waits the datasheet's maximum measurement time, checks the busy bit, reads the
/// burst of data registers and compensates with the datasheet's formulas.
///
/// The chip is identified, reset and its trimming parameters read on the first `read()`; if that
/// fails, the next `read()` tries again (a sensor plugged in later starts working).
public final class BME280: SensorDriver {
    public struct Settings: Sendable, Equatable {
        /// Oversampling per quantity: 1, 2, 4, 8 or 16 (datasheet 3.4); 0 skips the quantity.
        public var temperatureOversampling: Int
        public var pressureOversampling: Int
        public var humidityOversampling: Int
        /// IIR filter coefficient: 0 (off), 2, 4, 8 or 16.
        public var filter: Int

        public init(temperatureOversampling: Int = 1, pressureOversampling: Int = 1, humidityOversampling: Int = 1, filter: Int = 0) {
            self.temperatureOversampling = temperatureOversampling
            self.pressureOversampling = pressureOversampling
            self.humidityOversampling = humidityOversampling
            self.filter = filter
        }

        public static let validOversampling = [0, 1, 2, 4, 8, 16]
        public static let validFilter = [0, 2, 4, 8, 16]

        static func code(oversampling: Int) -> UInt8 {
            switch oversampling { case 1: 1; case 2: 2; case 4: 3; case 8: 4; case 16: 5; default: 0 }
        }

        static func code(filter: Int) -> UInt8 {
            switch filter { case 2: 1; case 4: 2; case 8: 3; case 16: 4; default: 0 }
        }
    }

    /// Plausibility limits: a little beyond the chip's rated range (−40…85 °C, 300…1100 hPa);
    /// a value outside them means a broken chip or bus, not weather.
    static let temperatureLimits = -45.0...90.0
    static let pressureLimits = 25_000.0...125_000.0

    public let driver = "bme280"
    public var location: String { "\(bus.name) \(hexAddress(address))" }
    private let bus: I2CBus
    private let address: UInt8
    private let settings: Settings
    private let clock: MonotonicClock
    private var calibration: BME280Calibration?
    private var hasHumidity = true

    public init(bus: I2CBus, address: UInt8 = 0x76, settings: Settings = Settings(), clock: MonotonicClock) {
        self.bus = bus
        self.address = address
        self.settings = settings
        self.clock = clock
    }

    /// Identifies the chip, resets it, reads its trimming parameters and programs filter and
    /// humidity oversampling. Called by `read()` when needed.
    public func configure() throws {
        let id = try bus.readRegister(address: address, register: BME280Register.chipID)
        if BME280Register.bmp280IDs.contains(id) {
            hasHumidity = false
        } else if id != BME280Register.bme280ID {
            throw SensorError(sensor: location, "chip id is \(hexByte(id)), expected 0x60 (BME280) or 0x58 (BMP280); is another chip at this address?")
        }
        try bus.writeRegister(address: address, register: BME280Register.reset, value: BME280Register.resetCommand)
        clock.sleep(microseconds: 2_000)  // start-up time after reset
        var copying = true
        for _ in 0..<10 {
            copying = try bus.readRegister(address: address, register: BME280Register.status) & BME280Register.statusImUpdate != 0
            if !copying { break }
            clock.sleep(microseconds: 1_000)
        }
        if copying { throw SensorError(sensor: location, "trimming parameters still copying (status im_update) 12 ms after reset") }
        let block1 = try bus.readRegisters(address: address, register: BME280Register.calibration00, count: 26)
        let block2 = hasHumidity ? try bus.readRegisters(address: address, register: BME280Register.calibration26, count: 7) : [UInt8](repeating: 0, count: 7)
        let cal = BME280Calibration(block1: block1, block2: block2)
        guard cal.isPlausible else {
            throw SensorError(sensor: location, "trimming parameters read as \(cal.t1 == 0 ? "zeros" : "ones"); the chip is not answering properly")
        }
        if hasHumidity {
            try bus.writeRegister(address: address, register: BME280Register.ctrlHum, value: Settings.code(oversampling: settings.humidityOversampling))
        }
        try bus.writeRegister(address: address, register: BME280Register.config, value: Settings.code(filter: settings.filter) << 2)
        calibration = cal
    }

    /// Datasheet 9.1: maximum measurement time in microseconds for the configured oversampling.
    var maximumMeasurementMicroseconds: UInt64 {
        let t = Double(settings.temperatureOversampling), p = Double(settings.pressureOversampling)
        let h = hasHumidity ? Double(settings.humidityOversampling) : 0
        let ms = 1.25 + 2.3 * t + (p > 0 ? 2.3 * p + 0.575 : 0) + (h > 0 ? 2.3 * h + 0.575 : 0)
        return UInt64(ms * 1000)
    }

    public func read() throws -> [Measurement] {
        if let wait = try start() { clock.sleep(microseconds: wait) }
        return try finish()
    }

    /// Triggers a forced-mode conversion (identifying and configuring the chip first if needed).
    public func start() throws -> UInt64? {
        if calibration == nil { try configure() }
        let ctrl = Settings.code(oversampling: settings.temperatureOversampling) << 5
            | Settings.code(oversampling: settings.pressureOversampling) << 2 | BME280Register.modeForced
        do {
            try bus.writeRegister(address: address, register: BME280Register.ctrlMeas, value: ctrl)
        } catch {
            calibration = nil  // re-identify next time: the chip may have been reset or replaced
            throw error
        }
        return maximumMeasurementMicroseconds
    }

    public func finish() throws -> [Measurement] {
        guard let cal = calibration else { return try read() }
        do {
            return try measure(cal)
        } catch {
            calibration = nil
            throw error
        }
    }

    /// Reads the conversion `start()` triggered, once its busy bit clears.
    private func measure(_ cal: BME280Calibration) throws -> [Measurement] {
        var busy = true
        for _ in 0..<5 {
            busy = try bus.readRegister(address: address, register: BME280Register.status) & BME280Register.statusMeasuring != 0
            if !busy { break }
            clock.sleep(microseconds: 2_000)
        }
        if busy {
            throw SensorError(sensor: location, "conversion did not finish: status busy bit still set \(maximumMeasurementMicroseconds / 1000 + 10) ms after the trigger")
        }
        let d = try bus.readRegisters(address: address, register: BME280Register.pressMSB, count: hasHumidity ? 8 : 6)
        let adcP = Int32(d[0]) << 12 | Int32(d[1]) << 4 | Int32(d[2]) >> 4
        let adcT = Int32(d[3]) << 12 | Int32(d[4]) << 4 | Int32(d[5]) >> 4
        guard adcT != 0x80000 else {
            throw SensorError(sensor: location, "temperature reads 0x80000, the value of a skipped measurement: no conversion has run")
        }
        var out: [Measurement] = []
        let (celsius, tFine) = BME280Compensation.temperature(adc: adcT, cal)
        guard Self.temperatureLimits.contains(celsius) else {
            throw SensorError(sensor: location, "temperature \(celsius) °C is outside \(Self.temperatureLimits); the chip or its wiring is faulty")
        }
        out.append(Measurement("temperature", celsius, unit: "°C"))
        if settings.pressureOversampling > 0 {
            guard adcP != 0x80000, let pa = BME280Compensation.pressure(adc: adcP, tFine: tFine, cal) else {
                throw SensorError(sensor: location, "pressure measurement was skipped or the trimming parameters give no value")
            }
            guard Self.pressureLimits.contains(pa) else {
                throw SensorError(sensor: location, "pressure \(pa / 100) hPa is outside 250…1250 hPa; the chip or its wiring is faulty")
            }
            out.append(Measurement("pressure", pa / 100, unit: "hPa"))
        }
        if hasHumidity, settings.humidityOversampling > 0 {
            let adcH = Int32(d[6]) << 8 | Int32(d[7])
            guard adcH != 0x8000 else { throw SensorError(sensor: location, "humidity reads 0x8000, the value of a skipped measurement") }
            out.append(Measurement("humidity", BME280Compensation.humidity(adc: adcH, tFine: tFine, cal), unit: "%"))
        }
        return out
    }
}

func hexByte(_ b: UInt8) -> String { hexAddress(b) }
