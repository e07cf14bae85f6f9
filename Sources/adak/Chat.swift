import AdaK
import ArgumentParser
import Glibc

/// Interactive chat with the model's own chat template. The KV cache is kept between turns:
/// each turn renders the whole conversation, keeps the longest token prefix the session
/// already holds and evaluates only the rest (the new user turn and the template's markers).
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a model (its chat template; one user message per line of standard input).",
        discussion: "Commands: /reset (new conversation), /stats (context, last turn, routing), /quit. "
            + "With --verbose each turn reports how many tokens it evaluated and reused.")

    @OptionGroup var decoding: DecodingOptions
    @Option(name: [.customShort("s"), .long], parsing: .unconditional,
            help: "System prompt (default: the template's own, if it has one)") var system: String?
    @Flag(help: "Print per-turn token counts, speed and why the answer stopped to standard error") var verbose = false
    @OptionGroup var routing: RoutingOptions

    func validate() throws { try decoding.check() }

    func run() throws {
        let model = try Model(path: decoding.model)
        let template = try model.chatTemplate()
        let session = try decoding.session(model)
        try routing.apply(to: session)
        let interactive = isatty(0) != 0
        if interactive {
            emit(Array("adak chat: \(model.config.arch), \(template.family.rawValue) template, context \(session.contextSize) tokens. /reset /stats /quit\n".utf8), to: 2)
        }
        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        var last = (evaluated: 0, reused: 0, generated: 0, seconds: 0.0)
        while true {
            if interactive { emit(Array("> ".utf8), to: 2) }
            guard let line = readLine(strippingNewline: true) else { break }
            let text = line.trimmingSpaces
            if text.isEmpty { continue }
            switch text {
            case "/quit", "/exit": return
            case "/reset":
                messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
                session.reset()
                session.resetStats()
                emit(Array("(new conversation)\n".utf8), to: 2)
                continue
            case "/stats":
                var s = "context \(session.position)/\(session.contextSize) tokens; last turn: evaluated \(last.evaluated) new tokens (reused \(last.reused)), generated \(last.generated)\n"
                if model.config.isMoE { s += formatStats(session.stats) + "\n" }
                emit(Array(s.utf8), to: 2)
                continue
            default: break
            }
            messages.append(ChatMessage(role: "user", content: line))
            let ids = model.tokenizeChat(try model.applyChatTemplate(messages))
            // keep the longest prefix the context already holds (at least one token is evaluated)
            var common = zip(session.tokens, ids).prefix { $0 == $1 }.count
            common = min(common, ids.count - 1)
            try session.truncate(to: common)
            let t0 = now()
            var reply: [UInt8] = []
            let out = try session.generate(prompt: Array(ids[common...]), maxTokens: decoding.maxTokens) { _, piece in
                reply += piece
                emit(piece)
                return true
            }
            emit(Array("\n".utf8))
            last = (ids.count - common, common, out.count, now() - t0)
            messages.append(ChatMessage(role: "assistant", content: String(decoding: reply, as: UTF8.self)))
            if verbose {
                emit(Array("[turn: evaluated \(last.evaluated) new tokens, reused \(last.reused) from the cache, generated \(last.generated) in \(ms(last.seconds)) ms, stopped: \(session.stopReason?.name ?? "-")]\n".utf8), to: 2)
            }
            if session.stopReason == .contextFull {
                emit(Array("(the context is full: /reset to start again, or a larger --ctx)\n".utf8), to: 2)
            }
        }
    }
}

extension String {
    var trimmingSpaces: String {
        let s = drop { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(s.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
