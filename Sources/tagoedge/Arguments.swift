/// The command line, parsed by the little that `tagoedge` needs: commands and subcommands,
/// `--long value`, `--long=value`, `-c value`, flags, repeatable options, positional arguments,
/// `--help` generated from the declarations, and usage errors that exit 2.
///
/// It keeps the shape of swift-argument-parser's declarations (`@Option`, `@Flag`, `@Argument`,
/// `@OptionGroup`, `CommandConfiguration`), which this program used before: that package brought
/// FoundationEssentials into the binary, 1.4 MB of resident memory on its own.
#if canImport(Glibc)
import Glibc
#endif

protocol ParsableArguments {
    init()
}

protocol ParsableCommand: ParsableArguments {
    static var configuration: CommandConfiguration { get }
    func run() throws
}

extension ParsableCommand {
    func run() throws {}
}

struct CommandConfiguration: @unchecked Sendable {
    var commandName: String?
    var abstract = ""
    var discussion = ""
    var version = ""
    var subcommands: [any ParsableCommand.Type] = []
    var defaultSubcommand: (any ParsableCommand.Type)?

    init(commandName: String? = nil, abstract: String = "", discussion: String = "", version: String = "",
         subcommands: [any ParsableCommand.Type] = [], defaultSubcommand: (any ParsableCommand.Type)? = nil) {
        self.commandName = commandName
        self.abstract = abstract
        self.discussion = discussion
        self.version = version
        self.subcommands = subcommands
        self.defaultSubcommand = defaultSubcommand
    }
}

/// Bad usage: exits 2 with the message and a pointer to `--help`.
struct ValidationError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Ends the program with this status.
struct ExitCode: Error {
    var rawValue: Int32
    init(_ code: Int32) { rawValue = code }
}

enum ArgumentVisibility { case `default`, hidden }

struct ArgumentHelp: ExpressibleByStringLiteral {
    var text: String
    var visibility: ArgumentVisibility
    init(_ text: String, visibility: ArgumentVisibility = .default) {
        self.text = text
        self.visibility = visibility
    }
    init(stringLiteral value: String) { self.init(value) }
}

struct NameSpecification {
    var long: String?
    var short: Character?
    static let shortAndLong = NameSpecification(long: nil, short: "-")  // "-": the long name's first letter
    static let long = NameSpecification(long: nil, short: nil)
    static func customLong(_ name: String) -> NameSpecification { NameSpecification(long: name, short: nil) }
}

/// A value an option or argument can hold.
protocol ArgumentValue {
    init?(argument: String)
}

extension String: ArgumentValue {
    init?(argument: String) { self = argument }
}

extension Int: ArgumentValue {
    init?(argument: String) { self.init(argument) }
}

extension UInt16: ArgumentValue {
    init?(argument: String) { self.init(argument) }
}

/// What every declaration is underneath: found by reflection, filled by the parser.
protocol ArgumentSlot: AnyObject {
    var help: ArgumentHelp { get }
    var isFlag: Bool { get }
    var isPositional: Bool { get }
    var isRequired: Bool { get }
    var isSet: Bool { get }
    var valueName: String { get }
    func names(property: String) -> (long: String, short: Character?)
    func accept(_ text: String, as name: String) throws(ValidationError)
}

/// How a property name becomes an option: `statusEvery` → `status-every`.
func kebab(_ property: String) -> String {
    var out = ""
    for c in property.drop(while: { $0 == "_" }) {
        if c.isUppercase {
            out += "-" + c.lowercased()
        } else {
            out.append(c)
        }
    }
    return out
}

@propertyWrapper
final class Option<Value>: ArgumentSlot {
    private var value: Value?
    private let defaultValue: Value?
    private let name: NameSpecification
    let help: ArgumentHelp
    private let repeatable: Bool
    private let convert: (String) -> Value?
    private let append: ((Value, String) -> Value?)?
    private(set) var isSet = false

    var wrappedValue: Value { value ?? defaultValue! }

    var isFlag: Bool { false }
    var isPositional: Bool { false }
    var isRequired: Bool { defaultValue == nil && !isOptional }
    private let isOptional: Bool
    var valueName: String { "<value>" }

    func names(property: String) -> (long: String, short: Character?) {
        let long = name.long ?? kebab(property)
        return (long, name.short == "-" ? long.first : name.short)
    }

    func accept(_ text: String, as name: String) throws(ValidationError) {
        if repeatable, let append {
            guard let next = append(value ?? defaultValue!, text) else { throw ValidationError("\(name): '\(text)' is not valid") }
            value = next
        } else {
            guard !isSet else { throw ValidationError("\(name) given twice") }
            guard let v = convert(text) else { throw ValidationError("\(name): '\(text)' is not valid") }
            value = v
        }
        isSet = true
    }

    private init(defaultValue: Value?, name: NameSpecification, help: ArgumentHelp, optional: Bool,
                 convert: @escaping (String) -> Value?, append: ((Value, String) -> Value?)? = nil) {
        self.defaultValue = defaultValue
        self.name = name
        self.help = help
        self.isOptional = optional
        self.convert = convert
        self.append = append
        repeatable = append != nil
    }
}

extension Option where Value: ArgumentValue {
    convenience init(wrappedValue: Value, name: NameSpecification = .long, help: ArgumentHelp = "") {
        self.init(defaultValue: wrappedValue, name: name, help: help, optional: false, convert: { Value(argument: $0) })
    }

    convenience init(name: NameSpecification = .long, help: ArgumentHelp = "") {
        self.init(defaultValue: nil, name: name, help: help, optional: false, convert: { Value(argument: $0) })
    }
}

extension Option {
    convenience init<Wrapped: ArgumentValue>(name: NameSpecification = .long, help: ArgumentHelp = "") where Value == Wrapped? {
        self.init(defaultValue: .some(nil), name: name, help: help, optional: true, convert: { Wrapped(argument: $0).map { .some($0) } })
    }

    convenience init<Element: ArgumentValue>(wrappedValue: [Element], name: NameSpecification = .long, help: ArgumentHelp = "") where Value == [Element] {
        self.init(defaultValue: wrappedValue, name: name, help: help, optional: true, convert: { Element(argument: $0).map { [$0] } },
                  append: { list, text in Element(argument: text).map { list + [$0] } })
    }
}

@propertyWrapper
final class Flag: ArgumentSlot {
    private var value = false
    private let name: NameSpecification
    let help: ArgumentHelp
    var wrappedValue: Bool { value }
    var isFlag: Bool { true }
    var isPositional: Bool { false }
    var isRequired: Bool { false }
    var isSet: Bool { value }
    var valueName: String { "" }

    init(wrappedValue: Bool = false, name: NameSpecification = .long, help: ArgumentHelp = "") {
        value = wrappedValue
        self.name = name
        self.help = help
    }

    func names(property: String) -> (long: String, short: Character?) {
        let long = name.long ?? kebab(property)
        return (long, name.short == "-" ? long.first : name.short)
    }

    func accept(_ text: String, as name: String) throws(ValidationError) { value = true }
}

@propertyWrapper
final class Argument<Value: ArgumentValue>: ArgumentSlot {
    private var value: Value?
    let help: ArgumentHelp
    var wrappedValue: Value { value! }
    var isFlag: Bool { false }
    var isPositional: Bool { true }
    var isRequired: Bool { true }
    var isSet: Bool { value != nil }
    var valueName: String { "" }

    init(help: ArgumentHelp = "") { self.help = help }

    func names(property: String) -> (long: String, short: Character?) { (kebab(property), nil) }

    func accept(_ text: String, as name: String) throws(ValidationError) {
        guard let v = Value(argument: text) else { throw ValidationError("<\(name)>: '\(text)' is not valid") }
        value = v
    }
}

/// Options shared by several commands, declared once in a `ParsableArguments` type.
@propertyWrapper
final class OptionGroup<Group: ParsableArguments> {
    let wrappedValue: Group
    init() { wrappedValue = Group() }
}

protocol OptionGroupSlot { var group: Any { get } }
extension OptionGroup: OptionGroupSlot { var group: Any { wrappedValue } }

/// The declarations of a command (and its option groups), in order, with their names.
func slots(of value: Any) -> [(property: String, slot: any ArgumentSlot)] {
    var out: [(String, any ArgumentSlot)] = []
    for child in Mirror(reflecting: value).children {
        let label = String((child.label ?? "").drop { $0 == "_" })
        if let slot = child.value as? any ArgumentSlot {
            out.append((label, slot))
        } else if let group = child.value as? any OptionGroupSlot {
            out += slots(of: group.group)
        }
    }
    return out
}

enum CommandLineParser {
    static func name(of command: any ParsableCommand.Type) -> String {
        command.configuration.commandName ?? kebab(String(describing: command)).drop { $0 == "-" }.description
    }

    /// Finds the (sub)command `arguments` name, fills it in, and returns it ready to run.
    static func parse(_ root: any ParsableCommand.Type, _ arguments: [String]) throws -> any ParsableCommand {
        var path = [name(of: root)]
        var command = root
        var rest = arguments[...]
        while true {
            let config = command.configuration
            if let first = rest.first, let sub = config.subcommands.first(where: { name(of: $0) == first }) {
                command = sub
                path.append(first)
                rest = rest.dropFirst()
                continue
            }
            if !config.subcommands.isEmpty {
                if rest.first == "--version", !config.version.isEmpty {
                    print(config.version)
                    throw ExitCode(0)
                }
                if rest.isEmpty || rest.first == "--help" || rest.first == "-h" || rest.first == "help" {
                    print(help(command, path: path))
                    throw ExitCode(rest.isEmpty && config.defaultSubcommand == nil ? 2 : 0)
                }
                if let fallback = config.defaultSubcommand {
                    command = fallback
                    path.append(name(of: fallback))
                    continue
                }
                throw ValidationError("unknown command '\(rest.first!)' for '\(path.joined(separator: " "))'; commands: \(config.subcommands.map(name(of:)).joined(separator: ", "))")
            }
            break
        }
        let instance = command.init()
        try fill(instance, from: Array(rest), path: path, command: command)
        return instance
    }

    static func fill(_ instance: any ParsableCommand, from arguments: [String], path: [String], command: any ParsableCommand.Type) throws {
        let declared = slots(of: instance)
        let options = declared.filter { !$0.slot.isPositional }
        let positionals = declared.filter { $0.slot.isPositional }
        var nextPositional = 0
        var i = 0
        func option(_ token: String) -> (name: String, slot: any ArgumentSlot)? {
            for (property, slot) in options {
                let n = slot.names(property: property)
                if token == "--" + n.long { return ("--" + n.long, slot) }
                if let s = n.short, token == "-\(s)" { return ("--" + n.long, slot) }
            }
            return nil
        }
        while i < arguments.count {
            let token = arguments[i]
            i += 1
            if token == "--help" || token == "-h" {
                print(help(command, path: path))
                throw ExitCode(0)
            }
            if token == "--" {
                while i < arguments.count {
                    try assign(arguments[i], positionals, &nextPositional, path)
                    i += 1
                }
                break
            }
            if token.hasPrefix("-") && token.count > 1 && Double(token) == nil {
                var key = token, inline: String?
                if let eq = token.firstIndex(of: "="), token.hasPrefix("--") {
                    key = String(token[..<eq])
                    inline = String(token[token.index(after: eq)...])
                }
                guard let (name, slot) = option(key) else {
                    throw ValidationError("unknown option '\(key)' for '\(path.joined(separator: " "))'")
                }
                if slot.isFlag {
                    guard inline == nil else { throw ValidationError("\(name) takes no value") }
                    try slot.accept("", as: name)
                    continue
                }
                if let inline {
                    try slot.accept(inline, as: name)
                } else {
                    guard i < arguments.count else { throw ValidationError("\(name) needs a value") }
                    try slot.accept(arguments[i], as: name)
                    i += 1
                }
                continue
            }
            try assign(token, positionals, &nextPositional, path)
        }
        for (property, slot) in declared where slot.isRequired && !slot.isSet {
            if slot.isPositional {
                throw ValidationError("missing <\(kebab(property))> for '\(path.joined(separator: " "))'")
            }
            throw ValidationError("missing --\(slot.names(property: property).long) for '\(path.joined(separator: " "))'")
        }
    }

    static func assign(_ text: String, _ positionals: [(property: String, slot: any ArgumentSlot)], _ next: inout Int, _ path: [String]) throws {
        guard next < positionals.count else { throw ValidationError("unexpected argument '\(text)' for '\(path.joined(separator: " "))'") }
        try positionals[next].slot.accept(text, as: kebab(positionals[next].property))
        next += 1
    }

    static func help(_ command: any ParsableCommand.Type, path: [String]) -> String {
        let config = command.configuration
        var lines: [String] = []
        if !config.abstract.isEmpty { lines += ["OVERVIEW: \(config.abstract)", ""] }
        if !config.discussion.isEmpty { lines += [config.discussion, ""] }
        if !config.subcommands.isEmpty {
            lines.append("USAGE: \(path.joined(separator: " ")) <subcommand>")
            lines += ["", "SUBCOMMANDS:"]
            for sub in config.subcommands {
                let isDefault = config.defaultSubcommand.map { name(of: $0) == name(of: sub) } ?? false
                lines.append("  \(name(of: sub).padded(16)) \(sub.configuration.abstract)\(isDefault ? " (default)" : "")")
            }
            lines += ["", "See '\(path.joined(separator: " ")) <subcommand> --help' for its options."]
            return lines.joined(separator: "\n")
        }
        let declared = slots(of: command.init())
        var usage = "USAGE: \(path.joined(separator: " "))"
        for (property, slot) in declared where slot.help.visibility != .hidden {
            if slot.isPositional {
                usage += " <\(kebab(property))>"
            } else if slot.isRequired {
                usage += " --\(slot.names(property: property).long) \(slot.valueName)"
            }
        }
        if declared.contains(where: { !$0.slot.isPositional && !$0.slot.isRequired }) { usage += " [<options>]" }
        lines += [usage, ""]
        let positional = declared.filter { $0.slot.isPositional }
        if !positional.isEmpty {
            lines.append("ARGUMENTS:")
            for (property, slot) in positional { lines.append("  <\(kebab(property))>".padded(28) + " " + slot.help.text) }
            lines.append("")
        }
        lines.append("OPTIONS:")
        for (property, slot) in declared where !slot.isPositional && slot.help.visibility != .hidden {
            let n = slot.names(property: property)
            let names = (n.short.map { "-\($0), " } ?? "") + "--\(n.long)" + (slot.isFlag ? "" : " \(slot.valueName)")
            lines.append("  " + names.padded(26) + " " + slot.help.text)
        }
        lines.append("  " + "-h, --help".padded(26) + " Show help information.")
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
