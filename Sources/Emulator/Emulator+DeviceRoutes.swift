#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore
import TagoTiP
import TagoKit

// The Device API's data routes: POST, GET, PUT and DELETE /data, with TagoIO's validation
// and limits. Called under the emulator's lock from `route(_:)`.
extension Emulator {
    func body(_ r: ServerRequest) -> Result<JSONValue, Failure> {
        do {
            return .success(try JSONValue.parse(String(decoding: r.body, as: UTF8.self)))
        } catch {
            return .failure(Failure(status: 400, message: "Invalid JSON: \(error)"))
        }
    }

    func insert(_ objects: [JSONValue], into device: EmuDevice) -> Result<Int, Failure> {
        for (i, o) in objects.enumerated() {
            if let problem = tagoDataObjectProblem(o) { return .failure(Failure(status: 400, message: "data[\(i)]: \(problem)")) }
            if let poison = faults.rejectVariable, o["variable"]?.stringValue?.lowercased() == poison {
                count("faults_rejected")
                return .failure(Failure(status: 400, message: "data[\(i)]: variable '\(poison)' refused by the server's rules (emulated)"))
            }
        }
        if device.type == "mutable", device.records.count + objects.count > options.mutableRecordLimit {
            return .failure(Failure(status: 400, message: "The device has reached its limit of \(options.mutableRecordLimit) records"))
        }
        let t = now()
        for o in objects {
            let time = o["time"]?.stringValue.flatMap { Timestamp(iso8601: $0) }?.millisecondsSince1970 ?? t
            var location = o["location"]
            if let lat = location?["lat"]?.numberValue, let lng = location?["lng"]?.numberValue {
                location = .object([("type", .string("Point")), ("coordinates", .array([.number(lng), .number(lat)]))])
            }
            device.records.append(EmuRecord(id: newID(), variable: (o["variable"]?.stringValue ?? "").lowercased(), value: o["value"] ?? .null,
                                            unit: o["unit"]?.stringValue, group: (o["group"] ?? o["serie"])?.stringValue, time: time,
                                            createdAt: t, location: location, metadata: o["metadata"]))
        }
        device.lastInput = t
        count("records_inserted", objects.count)
        dirty = true
        // Actions whose condition the new data meets start their analyses, with it as the scope.
        for (analyses, data) in resources.scriptActions(device: device.id, data: objects) {
            for a in analyses { triggerAnalysis(a, scope: data) }
        }
        return .success(objects.count)
    }

    func postData(_ r: ServerRequest, _ device: EmuDevice) -> ServerAction {
        if r.body.count > tagoMaxRequestBytes {
            return fail(413, "Payload too large: \(r.body.count) bytes; the limit is \(tagoMaxRequestBytes) bytes per request")
        }
        let parsed: JSONValue
        switch body(r) {
        case .success(let v): parsed = v
        case .failure(let f): return fail(f.status, f.message)
        }
        let objects: [JSONValue]
        switch parsed {
        case .array(let items): objects = items
        case .object: objects = [parsed]
        default: return fail(400, "Expected a data object or an array of them")
        }
        switch insert(objects, into: device) {
        case .success(let n): return ok(.string("\(n) Data Added"))
        case .failure(let f): return fail(f.status, f.message)
        }
    }

    /// Records matching the filters, newest first unless `ordination=ascending`.
    func select(_ r: ServerRequest, _ device: EmuDevice, defaultQty: Int = 15) -> [Int] {
        var variables = Set(r.queryValues("variable") + r.queryValues("variables") + r.queryValues("variables[]"))
        for (k, v) in r.query where k.hasPrefix("variables[") { variables.insert(v) }
        variables = Set(variables.map { $0.lowercased() })
        let ids = Set(r.queryValues("id") + r.queryValues("ids") + r.query.filter { $0.0.hasPrefix("ids[") }.map(\.1))
        let groups = Set(r.queryValues("group") + r.queryValues("groups") + r.queryValues("serie"))
        let start = r.queryValue("start_date").flatMap { Timestamp(iso8601: $0) }?.millisecondsSince1970
        let end = r.queryValue("end_date").flatMap { Timestamp(iso8601: $0) }?.millisecondsSince1970
        var idx = device.records.indices.filter { i in
            let rec = device.records[i]
            if !variables.isEmpty && !variables.contains(rec.variable) { return false }
            if !ids.isEmpty && !ids.contains(rec.id) { return false }
            if !groups.isEmpty && !(rec.group.map(groups.contains) ?? false) { return false }
            if let start, rec.time < start { return false }
            if let end, rec.time > end { return false }
            return true
        }
        let ascending = r.queryValue("ordination") == "ascending"
        idx.sort { a, b in
            let (x, y) = (device.records[a], device.records[b])
            if x.time != y.time { return ascending ? x.time < y.time : x.time > y.time }
            return ascending ? a < b : a > b
        }
        // Negative or absurd values are clamped, as TagoIO does, never trusted as offsets.
        let skip = min(max(Int(r.queryValue("skip") ?? "") ?? 0, 0), idx.count)
        let qty = ids.isEmpty ? (Int(r.queryValue("qty") ?? "") ?? defaultQty) : ids.count
        return Array(idx.dropFirst(skip).prefix(max(qty, 0)))
    }

    func getData(_ r: ServerRequest, _ device: EmuDevice) -> ServerAction {
        let details = r.queryValue("details") == "true"
        let query = r.queryValue("query")
        func records(_ idx: [Int]) -> JSONValue { .array(idx.map { device.records[$0].json(device: device.id, details: details) }) }
        switch query {
        case nil, "defaultQ":
            return ok(records(select(r, device)))
        case "last_item", "last_value", "last_location", "last_insert":
            var q = r
            q.query.removeAll { $0.0 == "qty" || $0.0 == "ordination" }
            return ok(records(Array(select(q, device, defaultQty: Int.max).prefix(1))))
        case "first_item", "first_value", "first_location", "first_insert":
            var q = r
            q.query.removeAll { $0.0 == "qty" || $0.0 == "ordination" }
            q.query.append(("ordination", "ascending"))
            return ok(records(Array(select(q, device, defaultQty: Int.max).prefix(1))))
        case "count", "min", "max", "avg", "sum":
            var q = r
            q.query.removeAll { $0.0 == "qty" }
            let idx = select(q, device, defaultQty: Int.max)
            let values = idx.compactMap { device.records[$0].value.numberValue }
            switch query {
            case "count": return ok(.number(Double(idx.count)))
            case "sum": return ok(.number(values.reduce(0, +)))
            case "avg": return ok(values.isEmpty ? .null : .number(values.reduce(0, +) / Double(values.count)))
            case "min": return ok(values.min().map { .number($0) } ?? .null)
            default: return ok(values.max().map { .number($0) } ?? .null)
            }
        default:
            return fail(400, "query '\(query ?? "")' is not emulated; use last_item, first_item, count, min, max, avg, sum or none")
        }
    }

    func putData(_ r: ServerRequest, _ device: EmuDevice) -> ServerAction {
        guard device.type == "mutable" else { return fail(400, "Immutable devices cannot be edited") }
        guard case .success(let parsed) = body(r), let items = parsed.arrayValue ?? (parsed.objectValue != nil ? [parsed] : nil) else {
            return fail(400, "Expected an array of {id, value, …}")
        }
        var updated = 0
        for item in items {
            guard let id = item["id"]?.stringValue, let i = device.records.firstIndex(where: { $0.id == id }) else { continue }
            if let v = item["value"] { device.records[i].value = v }
            if let u = item["unit"]?.stringValue { device.records[i].unit = u }
            if let g = item["group"]?.stringValue { device.records[i].group = g }
            if let t = item["time"]?.stringValue.flatMap({ Timestamp(iso8601: $0) }) { device.records[i].time = t.millisecondsSince1970 }
            if let m = item["metadata"] { device.records[i].metadata = m }
            if let l = item["location"] { device.records[i].location = l }
            updated += 1
        }
        dirty = true
        return ok(.string("\(updated) item(s) updated"))
    }

    func deleteData(_ r: ServerRequest, _ device: EmuDevice) -> ServerAction {
        guard device.type == "mutable" else { return fail(400, "Immutable devices cannot have data removed") }
        var q = r
        var idx: [Int]
        if r.queryValue("query") == "last_item" || r.queryValue("query") == "first_item" {
            let first = r.queryValue("query") == "first_item"
            q.query.removeAll { $0.0 == "query" || $0.0 == "qty" || $0.0 == "ordination" }
            q.query.append(("ordination", first ? "ascending" : "descending"))
            idx = Array(select(q, device, defaultQty: Int.max).prefix(1))
        } else {
            idx = select(q, device)
        }
        let doomed = Set(idx)
        device.records = device.records.enumerated().filter { !doomed.contains($0.offset) }.map(\.element)
        dirty = true
        return ok(.string("\(doomed.count) Data Removed"))
    }

    // MARK: Account API
}
