// Chat templates: renders a conversation the way a model's `tokenizer.chat_template` (Jinja)
// would, for the template families in common use. Rather than interpreting Jinja, the family and
// its variant (default system prompt, BOS placement, trimming, date line) are read from the
// template text; an unknown template is an error, never a guess. Each family is checked against
// transformers' own rendering (Tests/Fixtures/chat).

#if canImport(Glibc)
import Glibc
#endif

/// One message of a conversation. Roles: "system", "user", "assistant" (others are rejected by
/// the families that do not know them).
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// The template families libadak renders.
public enum ChatTemplateFamily: String, Sendable, CaseIterable {
    case chatml, llama3, llama2, mistral, gemma, phi3, deepseek, gptOss = "gpt-oss", granite
}

/// A calendar date for templates that print today's date (Llama-3.2, Granite 3.x, gpt-oss).
public struct ChatDate: Sendable, Equatable {
    public var year: Int, month: Int, day: Int
    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Today in UTC.
    public static var today: ChatDate {
        var t = time(nil)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return ChatDate(year: Int(tmv.tm_year) + 1900, month: Int(tmv.tm_mon) + 1, day: Int(tmv.tm_mday))
    }

    static let monthNames = ["January", "February", "March", "April", "May", "June", "July", "August",
                             "September", "October", "November", "December"]
    private func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

    /// The strftime formats the supported templates use: %Y-%m-%d, %B %d, %Y and %d %b %Y.
    func format(_ f: String) -> String? {
        let name = Self.monthNames[month - 1]
        switch f {
        case "%Y-%m-%d": return "\(year)-\(pad(month))-\(pad(day))"
        case "%B %d, %Y": return "\(name) \(pad(day)), \(year)"
        case "%d %b %Y": return "\(pad(day)) \(name.prefix(3)) \(year)"
        default: return nil
        }
    }
}

/// A detected chat template, ready to render conversations.
public struct ChatTemplate: Sendable {
    public let family: ChatTemplateFamily
    public let text: String
    private let variant: Variant

    /// What distinguishes the templates of one family (all read from the template text).
    private struct Variant: Sendable {
        var honorsGenerationPrompt = true
        var defaultSystem: String? = nil
        /// Default system prompt that embeds today's date: prefix + date(format) + suffix.
        var datedSystem: (prefix: String, format: String, suffix: String)? = nil
        var style = ""
    }

    /// Detects the family of `text`; throws `unsupported` for a template it cannot render exactly.
    public init(_ text: String) throws {
        self.text = text
        let has = { (s: String) in text.contains(s) }
        var v = Variant()
        v.honorsGenerationPrompt = has("add_generation_prompt")
        let unknown = AdaKError.unsupported("unknown chat template (supported: "
            + ChatTemplateFamily.allCases.map(\.rawValue).joined(separator: ", ") + ")")

        if has("<|start|>") && has("<|channel|>") && has("<|message|>") {
            family = .gptOss
            guard has("Knowledge cutoff: "), has("Current date: "), has("# Valid channels:") else { throw unknown }
            v.defaultSystem = Self.literal(after: "set model_identity = ", in: text)
            v.style = Self.literal(after: "Knowledge cutoff:", in: text, prefixed: true) ?? ""
        } else if has("<|im_start|>") && !has("<|im_sep|>") {
            family = .chatml
            v.defaultSystem = Self.literalRun(between: "<|im_start|>system\n", and: "<|im_end|>", in: text)
        } else if has("<|start_header_id|>") && has("<|eot_id|>") {
            family = .llama3
            if has("Cutting Knowledge Date:") {
                guard let cut = Self.literal(after: "Cutting Knowledge Date:", in: text, prefixed: true),
                      let date = Self.literal(after: "set date_string = ", in: text) else { throw unknown }
                v.style = cut
                v.defaultSystem = date
                if has("strftime_now(\"%d %b %Y\")") { v.datedSystem = ("", "%d %b %Y", "") }
            }
        } else if has("<<SYS>>") && has("[INST]") {
            family = .llama2
            v.defaultSystem = Self.literal(after: "{% set system_message = ", in: text, skipping: ["messages[0]", "false"])
            v.style = has("bos_token + '[INST]") ? "bos-per-turn" : "bos-once"
            guard has("content.strip()") else { throw unknown }
        } else if has("[INST]") && has("[/INST]") {
            family = .mistral
            if has("[SYSTEM_PROMPT]") && has("'[INST] ' + message['content'] + '[/INST]'") { v.style = "v7" }
            else if has("' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]'") { v.style = "v1" }
            else { throw unknown }
        } else if has("<start_of_turn>") && has("<end_of_turn>") {
            family = .gemma
            guard !has("first_user_prefix") else { throw unknown }
            v.style = text.hasPrefix("{{ bos_token }}") ? "bos" : ""
        } else if has("<|user|>") && has("<|end|>") && has("<|assistant|>") {
            family = .phi3
            v.style = (has("bos_token") ? "bos " : "") + (has("{% else %}{{ eos_token }}") ? "eos " : "")
                + (has("message['role'] == 'system' and message['content']") ? "system-if-content " : "")
                + (v.honorsGenerationPrompt ? "" : "user-opens-assistant")
            if !v.honorsGenerationPrompt && has("'<|system|>") { throw unknown }
        } else if has("<｜User｜>") && has("<｜Assistant｜>") {
            family = .deepseek
            v.style = "r1" + (has("{% if not enable_thinking %}{{- '</think>' -}}") ? " close-think" : "")
        } else if has("'User: '") && has("'Assistant: '") {
            family = .deepseek
            v.style = "v2"
        } else if has("<|start_of_role|>") && has("<|end_of_role|>") {
            family = .granite
            if has("Knowledge Cutoff Date:") {
                guard let p = Self.literal(after: "set system_message = ", in: text, skipping: ["messages[0]"]),
                      let r = text.firstRange(of: "strftime_now('"),
                      let fmtEnd = text[r.upperBound...].firstIndex(of: "'"),
                      let suffix = Self.literal(after: "strftime_now('\(text[r.upperBound..<fmtEnd])') + ", in: text),
                      let helpful = Self.literal(after: "{%- else %}\n         {%- set system_message = system_message + ", in: text)
                else { throw unknown }
                v.datedSystem = (p, String(text[r.upperBound..<fmtEnd]), suffix + helpful)
            } else if has("set system_message =") {
                throw unknown
            }
        } else {
            throw unknown
        }
        variant = v
    }

    /// Renders `messages`; with `addAssistant` the prompt ends with the opening of an assistant
    /// turn (Jinja's `add_generation_prompt`). `bos`/`eos` are the model's token texts, `date`
    /// is what templates that print today's date print.
    public func render(_ messages: [ChatMessage], addAssistant: Bool, bos: String, eos: String,
                       date: ChatDate = .today) throws -> String {
        guard !messages.isEmpty else { throw AdaKError.invalidArgument("a conversation needs at least one message") }
        for (i, m) in messages.enumerated() where !["system", "user", "assistant"].contains(m.role) {
            throw AdaKError.invalidArgument("message \(i): unknown role '\(m.role)' (system, user, assistant)")
        }
        let v = variant
        var out = ""
        switch family {
        case .chatml:
            if let d = v.defaultSystem, messages[0].role != "system" { out += "<|im_start|>system\n\(d)<|im_end|>\n" }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addAssistant { out += "<|im_start|>assistant\n" }

        case .llama3:
            out = bos
            var rest = messages[...]
            if let dateString = v.defaultSystem {
                var sys = ""
                if messages[0].role == "system" { sys = Self.trim(messages[0].content); rest = rest.dropFirst() }
                let today = v.datedSystem.flatMap { date.format($0.format) } ?? dateString
                out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date:\(v.style)"
                    + "Today Date: \(today)\n\n\(sys)<|eot_id|>"
            }
            for m in rest { out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(Self.trim(m.content))<|eot_id|>" }
            if addAssistant || !v.honorsGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }

        case .llama2:
            var rest = messages[...]
            var system = v.defaultSystem
            if messages[0].role == "system" { system = messages[0].content; rest = rest.dropFirst() }
            if v.style == "bos-once" { out = bos }
            try Self.checkAlternation(rest)
            for (i, m) in rest.enumerated() {
                var content = m.content
                if i == 0, let s = system { content = "<<SYS>>\n\(s)\n<</SYS>>\n\n" + content }
                if m.role == "user" {
                    out += (v.style == "bos-per-turn" ? bos : "") + "[INST] \(Self.strip(content)) [/INST]"
                } else {
                    out += " \(Self.strip(content)) \(eos)"
                }
            }

        case .mistral:
            out = bos
            if v.style == "v7" {
                for m in messages {
                    switch m.role {
                    case "user": out += "[INST] \(m.content)[/INST]"
                    case "system": out += "[SYSTEM_PROMPT] \(m.content)[/SYSTEM_PROMPT]"
                    default: out += " \(m.content)\(eos)"
                    }
                }
            } else {
                var rest = messages[...]
                var system: String? = nil
                if messages[0].role == "system" { system = messages[0].content; rest = rest.dropFirst() }
                try Self.checkAlternation(rest)
                for (i, m) in rest.enumerated() {
                    if m.role == "user" {
                        out += " [INST] " + (i == 0 && system != nil ? system! + "\n\n" : "") + m.content + " [/INST]"
                    } else {
                        out += " \(m.content)\(eos)"
                    }
                }
            }

        case .gemma:
            if messages[0].role == "system" { throw AdaKError.invalidArgument("System role not supported") }
            try Self.checkAlternation(messages[...])
            if v.style == "bos" { out = bos }
            for m in messages {
                out += "<start_of_turn>\(m.role == "assistant" ? "model" : m.role)\n\(Self.trim(m.content))<end_of_turn>\n"
            }
            if addAssistant { out += "<start_of_turn>model\n" }

        case .phi3:
            if v.style.contains("bos") { out = bos }
            if v.style.contains("user-opens-assistant") {
                for m in messages {
                    if m.role == "user" { out += "<|user|>\n\(m.content)<|end|>\n<|assistant|>\n" }
                    else if m.role == "assistant" { out += "\(m.content)<|end|>\n" }
                }
            } else {
                for m in messages {
                    if m.role == "system" && m.content.isEmpty && v.style.contains("system-if-content") { continue }
                    out += "<|\(m.role)|>\n\(m.content)<|end|>\n"
                }
                if addAssistant { out += "<|assistant|>\n" } else if v.style.contains("eos") { out += eos }
            }

        case .deepseek:
            out = bos
            if v.style == "v2" {
                for m in messages {
                    switch m.role {
                    case "user": out += "User: \(m.content)\n\n"
                    case "assistant": out += "Assistant: \(m.content)\(eos)"
                    default: out += "\(m.content)\n\n"
                    }
                }
                if addAssistant { out += "Assistant:" }
            } else {
                out += messages.last { $0.role == "system" }?.content ?? ""
                for m in messages {
                    if m.role == "user" { out += "<｜User｜>\(m.content)" }
                    else if m.role == "assistant" {
                        let c = m.content.split(separator: "</think>", omittingEmptySubsequences: false).last.map(String.init) ?? ""
                        out += "<｜Assistant｜>\(c)<｜end▁of▁sentence｜>"
                    }
                }
                if addAssistant { out += "<｜Assistant｜><think>\n" + (v.style.contains("close-think") ? "</think>" : "") }
            }

        case .gptOss:
            out = "<|start|>system<|message|>\(v.defaultSystem ?? "")\nKnowledge cutoff:\(v.style)"
                + "Current date: \(date.format("%Y-%m-%d")!)\n\nReasoning: medium\n\n"
                + "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
            var rest = messages[...]
            if messages[0].role == "system" {
                rest = rest.dropFirst()
                if !messages[0].content.isEmpty {
                    out += "<|start|>developer<|message|># Instructions\n\n\(messages[0].content)\n\n<|end|>"
                }
            }
            for (i, m) in rest.enumerated() {
                if m.role == "user" { out += "<|start|>user<|message|>\(m.content)<|end|>" }
                else if m.role == "assistant" {
                    if m.content.contains("<|channel|>analysis<|message|>") || m.content.contains("<|channel|>final<|message|>") {
                        throw AdaKError.invalidArgument("an assistant message contains <|channel|> tags")
                    }
                    let last = i == rest.count - 1 && !addAssistant
                    out += "<|start|>assistant<|channel|>final<|message|>\(m.content)" + (last ? "<|return|>" : "<|end|>")
                } else {
                    throw AdaKError.invalidArgument("message \(i + 1): a system message must come first")
                }
            }
            if addAssistant { out += "<|start|>assistant" }

        case .granite:
            var rest = messages[...]
            if messages[0].role == "system" {
                if v.datedSystem != nil { out += "<|start_of_role|>system<|end_of_role|>\(messages[0].content)<|end_of_text|>\n"; rest = rest.dropFirst() }
            } else if let d = v.datedSystem {
                out += "<|start_of_role|>system<|end_of_role|>\(d.prefix)\(date.format(d.format) ?? "")\(d.suffix)<|end_of_text|>\n"
            }
            for m in rest { out += "<|start_of_role|>\(m.role)<|end_of_role|>\(m.content)<|end_of_text|>\n" }
            if addAssistant { out += "<|start_of_role|>assistant<|end_of_role|>" }
        }
        return out
    }

    // MARK: - Reading the template text

    /// Jinja's `trim`/Python's `strip()`: drops leading and trailing whitespace.
    static func trim(_ s: String) -> String {
        let isWS = { (c: Character) in c.isWhitespace }
        guard let a = s.firstIndex(where: { !isWS($0) }), let b = s.lastIndex(where: { !isWS($0) }) else { return "" }
        return String(s[a...b])
    }

    static func strip(_ s: String) -> String { trim(s) }

    /// Templates that check alternation (user, assistant, user, ...) refuse anything else.
    static func checkAlternation(_ m: ArraySlice<ChatMessage>) throws {
        for (i, msg) in m.enumerated() where (msg.role == "user") != (i % 2 == 0) {
            throw AdaKError.invalidArgument("Conversation roles must alternate user/assistant/user/assistant/...")
        }
    }

    /// The first Jinja string literal after `marker` (skipping matches whose value starts with one
    /// of `skipping`), unescaped. With `prefixed`, the literal is the one `marker` starts inside.
    static func literal(after marker: String, in text: String, prefixed: Bool = false, skipping: [String] = []) -> String? {
        var from = text.startIndex
        while let r = text[from...].firstRange(of: marker) {
            from = r.upperBound
            if prefixed {
                // marker is inside a string literal: read up to that literal's closing quote.
                guard let q = text[..<r.lowerBound].lastIndex(where: { $0 == "'" || $0 == "\"" }) else { return nil }
                return readLiteral(text, from: r.upperBound, quote: text[q])
            }
            let rest = text[r.upperBound...].drop { $0 == " " }
            if skipping.contains(where: { rest.hasPrefix($0) }) { continue }
            guard let q = rest.first, q == "'" || q == "\"" else { continue }
            return readLiteral(text, from: text.index(after: rest.startIndex), quote: q)
        }
        return nil
    }

    /// The unescaped text of a string literal from `i` to its closing `quote`.
    private static func readLiteral(_ text: String, from i: String.Index, quote: Character) -> String? {
        var out = ""
        var i = i
        while i < text.endIndex {
            let c = text[i]
            if c == quote { return out }
            if c == "\\" {
                i = text.index(after: i)
                guard i < text.endIndex else { return nil }
                switch text[i] {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                default: out.append(text[i])
                }
            } else {
                out.append(c)
            }
            i = text.index(after: i)
        }
        return nil
    }

    /// The literal text between `open` and `close` inside one string literal (a ChatML default
    /// system prompt: `'<|im_start|>system\nYou are ...<|im_end|>\n'`), or nil.
    static func literalRun(between open: String, and close: String, in text: String) -> String? {
        let escOpen = open.replacing("\n", with: "\\n")
        for o in [open, escOpen] {
            var from = text.startIndex
            while let r = text[from...].firstRange(of: o) {
                from = r.upperBound
                guard let q = text[..<r.lowerBound].lastIndex(where: { $0 == "'" || $0 == "\"" }),
                      let lit = readLiteral(text, from: text.index(after: q), quote: text[q]),
                      let a = lit.firstRange(of: open), let b = lit[a.upperBound...].firstRange(of: close)
                else { continue }
                return String(lit[a.upperBound..<b.lowerBound])
            }
        }
        return nil
    }
}

extension Model {
    /// The model's chat template, detected (throws when the file has none or it is unknown).
    public func chatTemplate() throws -> ChatTemplate {
        guard let t = tokenizer.chatTemplate else {
            throw AdaKError.unsupported("the model file has no chat template (tokenizer.chat_template)")
        }
        return try ChatTemplate(t)
    }

    /// Renders `messages` with the model's chat template and its BOS/EOS texts.
    public func applyChatTemplate(_ messages: [ChatMessage], addAssistant: Bool = true,
                                  date: ChatDate = .today) throws -> String {
        let text = { (id: Int32?) in id.map { String(decoding: self.tokenizer.piece($0, special: true), as: UTF8.self) } ?? "" }
        return try chatTemplate().render(messages, addAssistant: addAssistant, bos: text(tokenizer.bos),
                                         eos: text(tokenizer.eos), date: date)
    }

    /// Tokens of a rendered chat: special tokens parsed (the template wrote them), BOS added only
    /// when the model wants one and the rendering does not already start with it.
    public func tokenizeChat(_ rendered: String) -> [Int32] {
        var ids = tokenizer.tokenize(rendered, addSpecial: false, parseSpecial: true)
        if tokenizer.addBOS, let b = tokenizer.bos, ids.first != b { ids.insert(b, at: 0) }
        return ids
    }
}
