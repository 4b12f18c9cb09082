import CLinuxHAL

/// Whether the kernel says the system clock is synchronised (an NTP client disciplined it).
public func linuxClockIsSynchronised() -> Bool {
    tehal_clock_synchronised() == 1
}
