/// Parses the text `i2cdump -y BUS ADDR b` prints (a header line, then 16 rows `00: xx xx …`),
/// so a simulated chip can start from a real chip's registers. Cells printed `XX` (failed reads)
/// are nil.
public struct I2CDump: Sendable, Equatable {
    public var bytes: [UInt8?]

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public init(text: String) throws(ParseError) {
        var cells = [UInt8?](repeating: nil, count: 256)
        var seenRows = Set<Int>()
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingSpaces()
            guard let colon = line.firstIndex(of: ":") else { continue }
            let label = line[..<colon]
            guard label.count == 2, let row = Int(label, radix: 16), row % 16 == 0 else { continue }
            let fields = line[line.index(after: colon)...].split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 16 else {
                throw ParseError(line: lineNumber, message: "row \(label) has \(fields.count) cells; expected 16")
            }
            for (k, field) in fields.prefix(16).enumerated() {
                if field == "XX" || field == "xx" { cells[row + k] = nil; continue }
                guard field.count == 2, let value = UInt8(field, radix: 16) else {
                    throw ParseError(line: lineNumber, message: "cell \(k) of row \(label) is '\(field)', not two hex digits or XX")
                }
                cells[row + k] = value
            }
            seenRows.insert(row)
        }
        guard !seenRows.isEmpty else { throw ParseError(line: lineNumber, message: "no register rows (like '00: 60 00 …') found; is this i2cdump output?") }
        bytes = cells
    }

    /// The registers as a 256-byte map; cells that failed to read become `fill`.
    public func registers(fill: UInt8 = 0) -> [UInt8] { bytes.map { $0 ?? fill } }
}
