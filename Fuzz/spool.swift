// libFuzzer target: the spool opened on any file image (a file the agent finds on its SD card after
// a bad day: torn writes, bit rot, another program's file, a hand-edited header). Properties: no
// trap; the file is refused with a clear error or opened; an opened spool (read-only or not) hands out records in
// increasing order within its capacity, which is never more than the file and the configuration
// allow; and an append after recovery survives closing and opening again.
import Glibc
import EdgeCore

let fuzzDirectory: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    let dir = "\(base)/fuzz-spool-\(getpid())"
    mkdir(dir, 0o700)
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpool(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = fuzzDirectory + "/spool"
    defer { clean() }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return 0 }
    _ = write(fd, data, size)
    close(fd)
    let options = FileSpool.Options(capacityBytes: 16 << 10, sync: .none)
    // Read-only first (`spool inspect` beside the agent): it changes nothing, and hands out
    // records in rising order all the same.
    if let inspect = try? FileSpool(path: path, options: FileSpool.Options(capacityBytes: 16 << 10, readOnly: true)) {
        var previous: UInt64 = 0
        try? inspect.forEachRecord { record in
            if record.seq <= previous { fatalError("read-only: record \(record.seq) after \(previous)") }
            previous = record.seq
            return true
        }
    }
    guard let spool = try? FileSpool(path: path, options: options) else { return 0 }
    let stats = spool.stats
    if stats.capacityBytes > max(Int64(size), 16 << 10) + 16 * 512 { fatalError("capacity \(stats.capacityBytes) from a \(size)-byte file") }
    var last: UInt64 = 0
    try? spool.forEachRecord { record in
        if record.seq <= last { fatalError("record \(record.seq) after \(last)") }
        last = record.seq
        return true
    }
    let payload: [UInt8] = [0x7b, 0x7d, 0x2a, 0x2a]
    guard let appended = try? spool.append([payload]) else { return 0 }
    try? spool.close()
    guard let again = try? FileSpool(path: path, options: options) else { fatalError("the spool does not open again after an append") }
    var found = false
    try? again.forEachRecord { record in
        if record.seq == appended.upperBound { found = record.payload == payload }
        return !found
    }
    if !found { fatalError("the append (seq \(appended.upperBound)) is gone after a reopen") }
    try? again.close()
    return 0
}

func clean() {
    guard let dir = opendir(fuzzDirectory) else { return }
    defer { closedir(dir) }
    while let e = readdir(dir) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { unlink(fuzzDirectory + "/" + name) }
    }
}
