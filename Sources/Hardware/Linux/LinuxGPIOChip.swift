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

    /// A path as given; `gpiochipN` under /dev; otherwise the chip whose label matches.
    static func resolve(_ chip: String) throws -> String {
        if chip.hasPrefix("/") { return chip }
        if chip.hasPrefix("gpiochip"), Int(chip.dropFirst(8)) != nil { return "/dev/" + chip }
        let sysfs = LinuxSysfs()
        let names = (try? sysfs.list("/dev").filter { $0.hasPrefix("gpiochip") }) ?? []
        for candidate in names {
            let path = "/dev/" + candidate
            let rc = tehal_open_chardev(path)
            guard rc >= 0 else { continue }
            var info = tehal_gpio_chipinfo()
            defer { _ = tehal_close(rc) }
            if tehal_gpio_chip_info(rc, &info) == 0, cString(&info.label) == chip { return path }
        }
        throw HardwareError(device: chip, operation: "find GPIO chip", errno: ENOENT_VALUE,
                            detail: "no /dev/gpiochip* has this name or label (found: \(names.isEmpty ? "none" : names.joined(separator: ", ")))")
    }

    private func check(_ line: UInt32) throws {
        guard line < lineCount else {
            throw HardwareError(device: name, operation: "request line \(line)", errno: EINVAL_VALUE,
                                detail: "\(label) has lines 0 to \(lineCount - 1)")
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
