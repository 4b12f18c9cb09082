import Testing
import EdgeCore
@testable import Hardware
#if canImport(Glibc)
import Glibc
#endif

/// This machine has no /dev/i2c-* or /dev/gpiochip*: these tests drive the real shim and ioctls
/// into the error paths a gateway can hit (missing bus, wrong kind of file).
@Suite struct LinuxErrorPathTests {
    func temporaryFile() -> String {
        var template = Array("/tmp/tagoedge-test-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        close(fd)
        return String(cString: template)
    }

    /// An address a kernel driver has bound is found through sysfs (the check I2C_RDWR needs,
    /// since only I2C_SLAVE refuses such addresses by itself).
    @Test func aKernelDriverOnAnAddressIsFoundInSysfs() throws {
        let root = "/tmp/tagoedge-sysfs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { _ = root.withCString { _ in system("rm -rf '\(root)'") } }
        for dir in ["/sys/bus/i2c/devices/1-0076", "/sys/bus/i2c/devices/1-0077", "/sys/bus/i2c/drivers/bmp280"] {
            _ = system("mkdir -p '\(root)\(dir)'")
        }
        _ = symlink("../../../../bus/i2c/drivers/bmp280", root + "/sys/bus/i2c/devices/1-0076/driver")
        #expect(LinuxI2CBus.kernelDriver(bus: 1, address: 0x76, sysfsRoot: root) == "bmp280")
        #expect(LinuxI2CBus.kernelDriver(bus: 1, address: 0x77, sysfsRoot: root) == nil)  // a device without a driver
        #expect(LinuxI2CBus.kernelDriver(bus: 1, address: 0x44, sysfsRoot: root) == nil)
    }

    @Test func missingI2CBusNamesTheDevice() {
        do {
            _ = try LinuxI2CBus(number: 250)
            Issue.record("opened a bus that does not exist")
        } catch let e as HardwareError {
            #expect(e.device == "/dev/i2c-250")
            #expect(e.errno == ENOENT)
            #expect(e.description.hasPrefix("/dev/i2c-250: open failed: No such file or directory"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func regularFileIsNotABus() {
        let path = temporaryFile()
        defer { unlink(path) }
        do {
            _ = try LinuxI2CBus(number: 0, path: path)
            Issue.record("a regular file was accepted as an i2c bus")
        } catch let e as HardwareError {
            #expect(e.errno == ENOTTY)
            #expect(e.description.contains("not an i2c-dev character device"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func characterDeviceThatIsNotI2CFailsAtI2CFuncs() {
        // /dev/null is a character device, so open succeeds and the I2C_FUNCS ioctl is what fails.
        do {
            _ = try LinuxI2CBus(number: 0, path: "/dev/null")
            Issue.record("/dev/null accepted as an i2c adapter")
        } catch let e as HardwareError {
            #expect(e.operation == "I2C_FUNCS")
            #expect(e.errno == ENOTTY)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func gpioChipErrorPaths() {
        #expect(throws: HardwareError.self) { try LinuxGPIOChip("/dev/gpiochip99") }
        do {
            _ = try LinuxGPIOChip("/dev/null")
            Issue.record("/dev/null accepted as a gpio chip")
        } catch let e as HardwareError {
            #expect(e.operation == "GPIO_GET_CHIPINFO_IOCTL")
            #expect(e.errno == ENOTTY)
        } catch {
            Issue.record("unexpected \(error)")
        }
        do {
            _ = try LinuxGPIOChip("pinctrl-rp1")
            Issue.record("found a chip by label on a machine with none")
        } catch let e as HardwareError {
            #expect(e.description.contains("no /dev/gpiochip* has this name or label"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func gpioChipNamesResolve() throws {
        #expect(try LinuxGPIOChip.resolve("gpiochip4") == "/dev/gpiochip4")
        #expect(try LinuxGPIOChip.resolve("/dev/gpiochip0") == "/dev/gpiochip0")
    }

    @Test func sysfsReaderReadsAndReportsMissingFiles() throws {
        let path = temporaryFile()
        defer { unlink(path) }
        let fd = open(path, O_WRONLY)
        _ = "48312\n".withCString { write(fd, $0, 6) }
        close(fd)
        let sysfs = LinuxSysfs()
        #expect(try sysfs.readText(path) == "48312\n")
        #expect(throws: HardwareError.self) { try sysfs.readText("/sys/class/thermal/thermal_zone999/temp") }
        #expect(try LinuxSysfs(root: "/").list("proc/self").contains("status"))
    }
}
