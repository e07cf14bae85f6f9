import Testing
@testable import AdaK

/// The regex DFA behind `Session.setRegex` / `adak_session_set_regex` (the generation side is
/// tested in Tests/C/regex_constraint.c and python/tests/test_regex_constraint.py).
@Suite struct RegexConstraintTests {
    private func matches(_ pattern: String, _ text: String) throws -> Bool {
        let dfa = try RegexDFA(pattern)
        guard let s = dfa.run(Array(text.utf8)) else { return false }
        return dfa.accepting[Int(s)]
    }

    private func failure(_ pattern: String) -> String {
        do {
            _ = try RegexDFA(pattern)
            return "ok"
        } catch AdaKError.invalidArgument(_) {
            return "invalid"
        } catch AdaKError.unsupported(_) {
            return "unsupported"
        } catch {
            return "other"
        }
    }

    @Test func languageOfPatterns() throws {
        let cases: [(String, [String], [String])] = [
            ("[0-9]{3}-[a-c]+(x|yz)?", ["123-a", "000-abcx", "999-cyz"], ["12-a", "123-", "123-ad", "123-ayzz"]),
            ("(?:ab|cd)*e\\.", ["e.", "abe.", "abcdabe."], ["ab", "abc e.", "e"]),
            ("\\d{1,2}:\\d\\d (am|pm)", ["1:05 am", "12:30 pm"], ["123:00 am", "1:5 am"]),
            ("[^a-z]+", ["ABC", "日本", "É!"], ["abc", "Ab", ""]),
            (".{2}", ["ab", "日本", "é\t"], ["a", "abc", "\n\n"]),
            ("(é|ü|日本)+!", ["é!", "日本ü!"], ["e!", "日!"]),
            ("[à-ö]+", ["àéö"], ["ø", "a"]),
            ("^a|b$", ["a", "b"], ["ab", ""]),
            ("\\u{1F600}\\x41\\u00e9", ["😀Aé"], ["😀A"]),
            ("[\\w.-]+@[a-z]+\\.(com|org)", ["a.b-c@x.com"], ["@x.com", "a@x.net"]),
            ("\\S\\s\\W", ["a !"], ["a a", "  !"]),
            ("a{0}b|c{2,}", ["b", "cc", "cccc"], ["ab", "c"]),
            ("x*?y+?", ["y", "xxyy"], ["x"]),
            ("", [""], ["a"]),
        ]
        for (p, yes, no) in cases {
            for t in yes { #expect(try matches(p, t), "\(p) should match \(t.debugDescription)") }
            for t in no { #expect(try !matches(p, t), "\(p) should not match \(t.debugDescription)") }
        }
    }

    /// A prefix stays alive only while a match can still follow, also inside a UTF-8 sequence.
    @Test func prefixesAreAliveOnlyWhenAMatchCanFollow() throws {
        let d = try RegexDFA("ab|ac")
        #expect(d.run(Array("a".utf8)) != nil)
        #expect(d.run(Array("b".utf8)) == nil)
        #expect(d.run(Array("abc".utf8)) == nil)
        let e = try RegexDFA("é")
        #expect(e.run([0xC3]) != nil)
        #expect(e.run([0xC3, 0xA8]) == nil)  // è
        #expect(e.run([0xFF]) == nil)
    }

    @Test func clearErrors() {
        for p in ["(ab", "ab)", "[a-", "[z-a]", "a{3,2}", "*a", "a{", "\\", "\\q", "a{1001}", "[^\\x00-\\u{10FFFF}]",
                  "\\xZZ", "\\u{110000}", "(a|b)*a(a|b){14}"] {
            #expect(failure(p) == "invalid", "\(p)")
        }
        for p in ["a(?=b)", "(?!a)b", "(?<=a)b", "(a)\\1", "\\bword", "\\p{L}+", "a++", "(?i)abc", "a^b", "a$b", "[[:alpha:]]"] {
            #expect(failure(p) == "unsupported", "\(p)")
        }
    }
}
