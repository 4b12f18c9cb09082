#if canImport(Glibc)
import Glibc
#endif
import CLinuxHAL

/// Whether the kernel says the system clock is synchronised (an NTP client disciplined it).
///
/// Read with adjtimex (modes 0: a query, no privilege needed). Where a sandbox refuses the call
/// (systemd's `ProtectClock=`), systemd-timesyncd's flag file says the same thing.
public func linuxClockIsSynchronised() -> Bool {
    switch tehal_clock_synchronised() {
    case 1: return true
    case 0: return false
    default: return access("/run/systemd/timesync/synchronized", F_OK) == 0
    }
}

/// Makes a spawn close every descriptor from `fd` up in the child (what it inherits is only what
/// the file actions give it). Returns 0 or an errno.
@discardableResult
public func spawnActionsCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ fd: Int32) -> Int32 {
    tehal_spawn_addclosefrom(actions, fd)
}
