#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore
import TagoTiP
import TagoKit

// The Account API routes fleets use: devices (list, create), their tokens, and the rest
// through `AccountResources`. Called under the emulator's lock from `route(_:)`.
extension Emulator {
    func account(_ r: ServerRequest, _ parts: [String]) -> ServerAction {
        switch (r.method, parts.count) {
        case ("GET", 1): return listDevices(r)
        case ("POST", 1): return createDevice(r)
        case ("POST", 2) where parts[1] == "token": return createToken(r)
        case ("GET", 3) where parts[1] == "token":
            return ok(.array(tokens.values.filter { $0.deviceID == parts[2] }.sorted { $0.createdAt > $1.createdAt }.map(\.json)))
        case ("DELETE", 3) where parts[1] == "token":
            guard tokens.removeValue(forKey: parts[2]) != nil else { return fail(404, "Token not found") }
            dirty = true
            return ok(.string("Token Successfully Removed"))
        default: break
        }
        guard parts.count >= 2, let device = devices[parts[1]] else { return fail(404, "Device not found") }
        switch (r.method, parts.count) {
        case ("GET", 2): return ok(device.json)
        case ("PUT", 2):
            guard case .success(let v) = body(r) else { return fail(400, "Invalid JSON") }
            device.updatedAt = now()
            if let n = v["name"]?.stringValue { device.name = n }
            if let a = v["active"]?.boolValue { device.active = a }
            if let vis = v["visible"]?.boolValue { device.visible = vis }
            if let tags = v["tags"]?.arrayValue { device.tags = tags.compactMap { t in t["key"]?.stringValue.map { ($0, t["value"]?.stringValue ?? "") } } }
            dirty = true
            return ok(.string("Successfully Updated"))
        case ("DELETE", 2):
            devices[device.id] = nil
            deviceOrder.removeAll { $0 == device.id }
            for (k, t) in tokens where t.deviceID == device.id { tokens[k] = nil }
            dirty = true
            return ok(.string("Successfully Removed"))
        case ("GET", 3) where parts[2] == "data_amount":
            return ok(.number(Double(device.records.count)))
        case ("GET", 3) where parts[2] == "params":
            let filter = r.queryValue("sent_status")
            return ok(.array(device.params.filter { filter == nil || String($0.sent) == filter }.map(\.json)))
        case ("POST", 3) where parts[2] == "params":
            guard case .success(let v) = body(r) else { return fail(400, "Invalid JSON") }
            for p in v.arrayValue ?? [v] {
                guard let key = p["key"]?.stringValue, !key.isEmpty else { return fail(400, "Each param needs a key") }
                let value: String = p["value"]?.stringValue ?? p["value"].map { v in v.numberValue.map(JSONValue.format) ?? v.serialized } ?? ""
                let sent = p["sent"]?.boolValue ?? false
                if let id = p["id"]?.stringValue, let i = device.params.firstIndex(where: { $0.id == id }) {
                    device.params[i].key = key
                    device.params[i].value = value
                    device.params[i].sent = sent
                } else {
                    guard device.params.count < 60 else { return fail(400, "A device holds at most 60 configuration params") }
                    device.params.append(EmuParam(id: newID(), key: key, value: value, sent: sent))
                }
            }
            dirty = true
            return ok(.string("Params Successfully Updated"))
        case ("DELETE", 4) where parts[2] == "params":
            guard let i = device.params.firstIndex(where: { $0.id == parts[3] }) else { return fail(404, "Param not found") }
            device.params.remove(at: i)
            dirty = true
            return ok(.string("Successfully Removed"))
        default:
            return fail(405, "\(r.method) \(r.path) is not emulated")
        }
    }

    func listDevices(_ r: ServerRequest) -> ServerAction {
        let page = max(Int(r.queryValue("page") ?? "1") ?? 1, 1)
        let amount = min(max(Int(r.queryValue("amount") ?? "20") ?? 20, 1), 10_000)
        var fields = r.queryValues("fields[]") + r.queryValues("fields")
        for (k, v) in r.query where k.hasPrefix("fields[") && k != "fields[]" { fields.append(v) }
        if fields.isEmpty { fields = ["id", "name"] }
        var list = deviceOrder.compactMap { devices[$0] }
        if let name = r.queryValue("filter[name]") {
            let pattern = name.lowercased()
            list = list.filter { wildcardMatch(pattern, $0.name.lowercased()) }
        }
        var i = 0
        while let key = r.queryValue("filter[tags][\(i)][key]") {
            let value = r.queryValue("filter[tags][\(i)][value]")
            list = list.filter { d in d.tags.contains { $0.0 == key && (value == nil || $0.1 == value) } }
            i += 1
        }
        let order = (r.queryValue("orderBy") ?? "name,asc").split(separator: ",")
        let descending = order.count > 1 && order[1] == "desc"
        if order.first == "name" {
            list.sort { descending ? $0.name > $1.name : $0.name < $1.name }
        } else if order.first == "created_at" {
            list.sort { descending ? $0.createdAt > $1.createdAt : $0.createdAt < $1.createdAt }
        }
        let pageItems = list.dropFirst(pageOffset(page: page, amount: amount, count: list.count)).prefix(amount)
        return ok(.array(pageItems.map { d in
            guard case .object(let all) = d.json else { return .null }
            return .object(all.filter { fields.contains($0.0) })
        }))
    }

    func createDevice(_ r: ServerRequest) -> ServerAction {
        guard case .success(let v) = body(r), let name = v["name"]?.stringValue, !name.isEmpty else {
            return fail(400, "A device needs a name")
        }
        let type = v["type"]?.stringValue ?? "mutable"
        guard type == "mutable" || type == "immutable" else { return fail(400, "type must be mutable or immutable") }
        let d = makeDevice(name: name, type: type)
        d.tags = (v["tags"]?.arrayValue ?? []).compactMap { t in t["key"]?.stringValue.map { ($0, t["value"]?.stringValue ?? "") } }
        d.serial = v["serie_number"]?.stringValue
        d.network = v["network"]?.stringValue
        d.connector = v["connector"]?.stringValue
        if let a = v["active"]?.boolValue { d.active = a }
        for p in v["configuration_params"]?.arrayValue ?? [] {
            if let key = p["key"]?.stringValue {
                let value = p["value"]?.stringValue ?? p["value"].map { v in v.numberValue.map(JSONValue.format) ?? v.boolValue.map { $0 ? "true" : "false" } ?? "" } ?? ""
                d.params.append(EmuParam(id: newID(), key: key, value: value, sent: p["sent"]?.boolValue ?? false))
            }
        }
        let token = newToken()
        tokens[token] = EmuToken(token: token, name: "Default", permission: "full", deviceID: d.id, expire: "never", createdAt: now())
        count("devices_created")
        return ok(.object([("device_id", .string(d.id)), ("bucket_id", .string(d.id)), ("token", .string(token))]), status: 201)
    }

    func createToken(_ r: ServerRequest) -> ServerAction {
        guard case .success(let v) = body(r), let deviceID = v["device"]?.stringValue, devices[deviceID] != nil else {
            return fail(400, "A token needs an existing device")
        }
        let permission = v["permission"]?.stringValue ?? "full"
        guard ["full", "write", "read"].contains(permission) else { return fail(400, "permission must be full, write or read") }
        let token = newToken()
        let expire = v["expire_time"]?.stringValue ?? "never"
        tokens[token] = EmuToken(token: token, name: v["name"]?.stringValue ?? "token", permission: permission, deviceID: deviceID, expire: expire, createdAt: now())
        dirty = true
        return ok(.object([("token", .string(token)), ("permission", .string(permission)), ("expire_date", expire == "never" ? .null : .string(expire))]))
    }

    // MARK: control and persistence
}
