import Testing
@testable import Agent

@Suite struct TOMLTests {
    @Test func valuesOfEveryKind() throws {
        let doc = try TOML.parse(#"""
        # comment
        title = "TagoEdge \"bench\"\u00e9"
        literal = 'C:\path'
        hex = 0x76
        octal = 0o17
        binary = 0b101
        big = 1_000_000
        negative = -42
        float = 3.5e2
        flag = true
        list = [ 1, 2,
                 3, ]  # trailing comma and a newline inside
        nested = [[1, 2], ["a"]]
        inline = { a = 1, b.c = "x" }
        multi = """
        one
        two"""
        "quoted key" = 1
        dotted.key = "v"

        [table]
        x = 1
        [table.sub]
        y = 2

        [[items]]
        name = "first"
        [items.extra]
        z = 3

        [[items]]
        name = "second"
        """#)
        func v(_ key: String) -> TOMLValue? { doc[key]?.value }
        guard case .string("TagoEdge \"bench\"é") = v("title") else { Issue.record("title"); return }
        guard case .string(#"C:\path"#) = v("literal") else { Issue.record("literal"); return }
        guard case .integer(0x76) = v("hex"), case .integer(15) = v("octal"), case .integer(5) = v("binary"),
              case .integer(1_000_000) = v("big"), case .integer(-42) = v("negative"), case .float(350) = v("float"),
              case .bool(true) = v("flag") else { Issue.record("numbers"); return }
        guard case .array(let list) = v("list") else { Issue.record("list"); return }
        #expect(list.count == 3)
        #expect(list[2].line == 12)
        guard case .string("one\ntwo") = v("multi") else { Issue.record("multi-line"); return }
        guard case .table(let inline) = v("inline"), case .table(let b) = inline["b"]?.value, case .string("x") = b["c"]?.value else { Issue.record("inline"); return }
        guard case .table(let dotted) = v("dotted"), case .string("v") = dotted["key"]?.value else { Issue.record("dotted"); return }
        #expect(doc["quoted key"] != nil)
        guard case .table(let table) = v("table"), case .table(let sub) = table["sub"]?.value, case .integer(2) = sub["y"]?.value else { Issue.record("tables"); return }
        guard case .array(let items) = v("items"), items.count == 2, case .table(let first) = items[0].value,
              case .table(let extra) = first["extra"]?.value, case .integer(3) = extra["z"]?.value else { Issue.record("array of tables"); return }
        #expect(first["name"]?.line == 27)
    }

    @Test(arguments: [
        ("a = 1\na = 2", 2, "defined twice"),
        ("a = \"open", 1, "not closed"),
        ("a = 1 b = 2", 1, "end of the line"),
        ("[t]\nx=1\n[t]\ny=2", 3, "already defined"),
        ("a = 2026-11-29", 1, "dates and times are not supported"),
        ("a = 0x", 1, "not a valid value"),
        ("a = 012", 1, "not a valid value"),
        ("a = yes", 1, "strings need quotes"),
        ("a = [1, 2", 1, "not closed"),
        ("\n\n= 3", 3, "expected a key"),
        ("a = \"bad \\q escape\"", 1, "unknown escape"),
        ("x = 1\n[x]\ny = 2", 2, "not a table"),
        ("t = {a = 1}\n[t]\nb = 2", 2, "defined inline"),
    ])
    func errorsSayWhereAndWhat(text: String, line: Int, fragment: String) {
        do {
            _ = try TOML.parse(text)
            Issue.record("parsed invalid TOML: \(text)")
        } catch {
            #expect(error.line == line, "\(text)")
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }
}
