import Foundation
import Testing
@testable import AdaK

/// Chat-template rendering against transformers' `apply_chat_template` (Tests/Fixtures/chat,
/// made by Tests/Fixtures/tools/make_chat_goldens.py).
struct ChatTemplateTests {
    struct Golden {
        var template: String, family: String, conversation: String, addAssistant: Bool
        var bos: String, eos: String, rendered: String?, error: String?
    }

    static func goldens() throws -> (cases: [Golden], conversations: [String: [ChatMessage]], date: ChatDate) {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("chat/goldens.json")))
        let o = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var convs: [String: [ChatMessage]] = [:]
        for (k, v) in o["conversations"] as! [String: [[String: String]]] {
            convs[k] = v.map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
        }
        let d = (o["date"] as! String).split(separator: "-").map { Int($0)! }
        let cases = (o["cases"] as! [[String: Any]]).map {
            Golden(template: $0["template"] as! String, family: $0["family"] as! String,
                   conversation: $0["conversation"] as! String, addAssistant: $0["add_assistant"] as! Bool,
                   bos: $0["bos_token"] as! String, eos: $0["eos_token"] as! String,
                   rendered: $0["rendered"] as? String, error: $0["error"] as? String)
        }
        return (cases, convs, ChatDate(year: d[0], month: d[1], day: d[2]))
    }

    @Test func renderingEqualsTransformers() throws {
        let g = try Self.goldens()
        var templates = Set<String>(), matched = 0
        for c in g.cases {
            templates.insert(c.template)
            let text = try String(contentsOfFile: Fixtures.path("chat/templates/\(c.template).jinja"), encoding: .utf8)
            let t = try ChatTemplate(text)
            #expect(t.family.rawValue == c.family, "\(c.template)")
            let msgs = g.conversations[c.conversation]!
            if let want = c.rendered {
                let got = try t.render(msgs, addAssistant: c.addAssistant, bos: c.bos, eos: c.eos, date: g.date)
                #expect(got == want, "\(c.template) \(c.conversation) add=\(c.addAssistant)\n got \(got.debugDescription)\nwant \(want.debugDescription)")
                if got == want { matched += 1 }
            } else {
                #expect(throws: AdaKError.self, "\(c.template) \(c.conversation) should refuse: \(c.error ?? "")") {
                    _ = try t.render(msgs, addAssistant: c.addAssistant, bos: c.bos, eos: c.eos, date: g.date)
                }
            }
        }
        print("chat templates: \(templates.count) templates, \(matched)/\(g.cases.filter { $0.rendered != nil }.count) renderings equal transformers'")
        #expect(templates.count >= 17)
        #expect(Set(g.cases.map(\.family)) == Set(ChatTemplateFamily.allCases.map(\.rawValue)))
    }

    @Test func unknownTemplateIsAClearError() {
        let t = "{% for m in messages %}<<{{ m.role }}>>{{ m.content }}{% endfor %}"
        #expect(throws: AdaKError.self) { _ = try ChatTemplate(t) }
        do { _ = try ChatTemplate(t) } catch { #expect("\(error)".contains("unknown chat template")) }
    }

    @Test func badMessagesAreRefused() throws {
        let t = try ChatTemplate(String(contentsOfFile: Fixtures.path("chat/templates/smollm2.jinja"), encoding: .utf8))
        #expect(throws: AdaKError.self) { _ = try t.render([], addAssistant: true, bos: "", eos: "") }
        #expect(throws: AdaKError.self) {
            _ = try t.render([ChatMessage(role: "wizard", content: "hi")], addAssistant: true, bos: "", eos: "")
        }
    }

    @Test func dateFormats() {
        let d = ChatDate(year: 2026, month: 3, day: 7)
        #expect(d.format("%Y-%m-%d") == "2026-03-07")
        #expect(d.format("%B %d, %Y") == "March 07, 2026")
        #expect(d.format("%d %b %Y") == "07 Mar 2026")
        #expect(d.format("%A") == nil)
    }

    /// The demo model's own template, through the model (BOS/EOS from its vocabulary).
    @Test func smolLM2ModelTemplate() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        #expect(try m.chatTemplate().family == .chatml)
        let s = try m.applyChatTemplate([ChatMessage(role: "user", content: "Hi")])
        #expect(s == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let ids = m.tokenizeChat(s)
        #expect(ids.first == m.tokenizer.tokenize("<|im_start|>", addSpecial: false, parseSpecial: true).first)
    }
}
