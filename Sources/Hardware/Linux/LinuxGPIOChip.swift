import CLinuxHAL
import EdgeCore

/// A GPIO chip through the Linux GPIO character device, uAPI v2 (`/dev/gpiochipN`).
/// Owns its descriptor, closed on deinit; the lines it hands out own theirs.
public final class LinuxGPIOChip: GPIOChip {
    public let name: String
    public let label: String
    public let lineCount: UInt32
    private let fd: Int32

    /// Opens a chip by path (`/dev/gpiochip4`), by name (`gpiochip4`) or by label (`pinctrl-rp1`).
    public init(_ chip: String) throws {
        let path = try LinuxGPIOChip.resolve(chip)
        let rc = tehal_open_chardev(path)
        guard rc >= 0 else {
            throw HardwareError(device: path, operation: "open", errno: -rc,
                                detail: rc == -ENOTTY_VALUE ? "the path exists but is not a GPIO character device" : nil)
        }
        var info = tehal_gpio_chipinfo()
        let irc = tehal_gpio_chip_info(rc, &info)
        guard irc == 0 else {
            _ = tehal_close(rc)
            throw HardwareError(device: path, operation: "GPIO_GET_CHIPINFO_IOCTL", errno: -irc)
        }
        fd = rc
        name = path
        label = cString(&info.label)
        lineCount = info.lines
    }

    deinit { _ = tehal_close(fd) }

    /// The labels of the chips that drive a Raspberry Pi's 40-pin header: the RP1 on a Pi 5,
    /// the SoC's own on earlier models. On a Pi 5 with a kernel before 6.6.45 `gpiochip0` is the
    /// SoC's chip and the header is `gpiochip4`; after, the other way round: a number is not safe.
    public static let headerLabels = ["pinctrl-rp1", "pinctrl-bcm2712", "pinctrl-bcm2711", "pinctrl-bcm2835"]

    /// A path as given; `gpiochipN` under /dev; `header`: the Raspberry Pi header's chip, by its
    /// label; otherwise the chip whose label matches.
    static func resolve(_ chip: String) throws -> String {
        if chip.hasPrefix("/") { return chip }
        if chip == "header" {
            let labels = chipLabels()
            for wanted in headerLabels {
                if let path = labels.first(where: { $0.label == wanted })?.path { return path }
            }
            throw HardwareError(device: "header", operation: "find GPIO chip", errno: ENOENT_VALUE,
                                detail: "no chip labelled \(headerLabels.joined(separator: ", ")) (found: \(labels.map { "\($0.path) \($0.label)" }.joined(separator: ", ")))")
        }
        if chip.hasPrefix("gpiochip"), Int(chip.dropFirst(8)) != nil { return "/dev/" + chip }
        let labels = chipLabels()
        if let path = labels.first(where: { $0.label == chip })?.path { return path }
        throw HardwareError(device: chip, operation: "find GPIO chip", errno: ENOENT_VALUE,
                            detail: "no /dev/gpiochip* has this name or label (found: \(labels.isEmpty ? "none" : labels.map { "\($0.path) \($0.label)" }.joined(separator: ", ")))")
    }

    /// Every /dev/gpiochip* with its label.
    static func chipLabels() -> [(path: String, label: String)] {
        let names = ((try? LinuxSysfs().list("/dev")) ?? []).filter { $0.hasPrefix("gpiochip") }
        return names.compactMap { candidate in
            let path = "/dev/" + candidate
            let rc = tehal_open_chardev(path)
            guard rc >= 0 else { return nil }
            defer { _ = tehal_close(rc) }
            var info = tehal_gpio_chipinfo()
            guard tehal_gpio_chip_info(rc, &info) == 0 else { return nil }
            return (path, cString(&info.label))
        }
    }

    /// The line the kernel names `lineName`, searched on this chip.
    public func lineOffset(named lineName: String) throws -> UInt32 {
        var named: [String] = []
        for offset in 0..<lineCount {
            let n = self.lineName(offset)
            if n == lineName { return offset }
            if !n.isEmpty, named.count < 6 { named.append(n) }
        }
        throw HardwareError(device: name, operation: "find line \(lineName)", errno: ENOENT_VALUE,
                            detail: "no line of \(label) is named \(lineName)" + (named.isEmpty ? " (it names no lines: give the offset)" : " (its lines are named like \(named.joined(separator: ", ")))"))
    }

    /// The kernel's name for a line (`GPIO17` on a Pi's header chip), or "" when it has none.
    public func lineName(_ line: UInt32) -> String {
        var info = tehal_gpio_lineinfo()
        guard tehal_gpio_line_info(fd, line, &info) == 0 else { return "" }
        return cString(&info.name)
    }

    /// The line exists, and where the kernel names lines `GPIOn` (a Pi's header chip), this one
    /// is `GPIO<line>`: a number that names another pin on this chip is refused before anything
    /// is driven (a Pi 5's gpiochip0 is not the header's chip on every kernel).
    private func check(_ line: UInt32) throws {
        guard line < lineCount else {
            throw HardwareError(device: name, operation: "request line \(line)", errno: EINVAL_VALUE,
                                detail: "\(label) has lines 0 to \(lineCount - 1)")
        }
        let lineName = lineName(line)
        if lineName.hasPrefix("GPIO"), Int(lineName.dropFirst(4)) != nil, lineName != "GPIO\(line)" {
            throw HardwareError(device: name, operation: "request line \(line)", errno: EINVAL_VALUE,
                                detail: "\(label)'s line \(line) is named \(lineName), not GPIO\(line): this is not the chip the config means; use chip = \"header\" on a Raspberry Pi")
        }
    }

    public func requestInput(line: UInt32, options: GPIOInputOptions, consumer: String) throws -> GPIOInputLine {
        try check(line)
        var flags = TEHAL_GPIO_FLAG_INPUT
        if options.activeLow { flags |= TEHAL_GPIO_FLAG_ACTIVE_LOW }
        switch options.bias {
        case .asIs: break
        case .pullUp: flags |= TEHAL_GPIO_FLAG_BIAS_PULL_UP
        case .pullDown: flags |= TEHAL_GPIO_FLAG_BIAS_PULL_DOWN
        case .disabled: flags |= TEHAL_GPIO_FLAG_BIAS_DISABLED
        }
        switch options.edges {
        case .none: break
        case .rising: flags |= TEHAL_GPIO_FLAG_EDGE_RISING
        case .falling: flags |= TEHAL_GPIO_FLAG_EDGE_FALLING
        case .both: flags |= TEHAL_GPIO_FLAG_EDGE_RISING | TEHAL_GPIO_FLAG_EDGE_FALLING
        }
        var offset = line
        let rc = tehal_gpio_request(fd, &offset, 1, flags, options.debounceMicroseconds, 0, consumer, min(options.eventBufferSize, GPIOInputOptions.maxEventBuffer))
        guard rc >= 0 else { throw HardwareError(device: name, operation: "GPIO_V2_GET_LINE_IOCTL line \(line)", errno: -rc) }
        return LinuxGPIOLine(fd: rc, name: "\(name) line \(line)")
    }

    public func requestOutput(line: UInt32, initial: Bool, activeLow: Bool, consumer: String) throws -> GPIOOutputLine {
        try check(line)
        var flags = TEHAL_GPIO_FLAG_OUTPUT
        if activeLow { flags |= TEHAL_GPIO_FLAG_ACTIVE_LOW }
        var offset = line
        let rc = tehal_gpio_request(fd, &offset, 1, flags, 0, initial ? 1 : 0, consumer, 0)
        guard rc >= 0 else { throw HardwareError(device: name, operation: "GPIO_V2_GET_LINE_IOCTL line \(line)", errno: -rc) }
        return LinuxGPIOLine(fd: rc, name: "\(name) line \(line)")
    }
}

/// One requested line; closing the descriptor (on deinit) releases it to the kernel.
final class LinuxGPIOLine: GPIOInputLine, GPIOOutputLine {
    let name: String
    private let fd: Int32

    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    deinit { _ = tehal_close(fd) }

    func value() throws -> Bool {
        var bits: UInt64 = 0
        let rc = tehal_gpio_get_values(fd, 1, &bits)
        guard rc == 0 else { throw HardwareError(device: name, operation: "GPIO_V2_LINE_GET_VALUES_IOCTL", errno: -rc) }
        return bits & 1 != 0
    }

    func set(_ value: Bool) throws {
        let rc = tehal_gpio_set_values(fd, 1, value ? 1 : 0)
        guard rc == 0 else { throw HardwareError(device: name, operation: "GPIO_V2_LINE_SET_VALUES_IOCTL", errno: -rc) }
    }

    func edges(timeoutMilliseconds: Int) throws -> [GPIOEdge] {
        var result: [GPIOEdge] = []
        var buffer = [tehal_gpio_event](repeating: tehal_gpio_event(), count: 16)
        var timeout = Int32(clamping: timeoutMilliseconds)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { tehal_gpio_read_events(fd, $0.baseAddress, 16, timeout) }
            guard n >= 0 else { throw HardwareError(device: name, operation: "read edge events", errno: -n) }
            for e in buffer.prefix(Int(n)) {
                result.append(GPIOEdge(e.id == TEHAL_GPIO_EVENT_RISING ? .rising : .falling, at: e.timestamp_ns, lineSequence: e.line_seqno))
            }
            if n < 16 { return result }
            timeout = 0  // drain what is queued, without waiting again
        }
    }
}

func cString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
