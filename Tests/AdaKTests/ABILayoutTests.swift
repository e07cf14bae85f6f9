import CAdaK
import Foundation
import Testing

/// The header is the one description of the ABI: the exports read its structs through the
/// module map (include/module.modulemap), so Swift's view of each struct must be the C
/// compiler's. scripts/abi-layout.py parses adak.h and prints what the host's `cc` makes of
/// every struct; this test compares every size and field offset with Swift's imported layout,
/// and fails when the header gains a field this table does not list (or loses one it does).
@Suite struct ABILayoutTests {
    struct CLayout: Decodable {
        let size: Int
        let fields: [[FieldValue]]
    }

    enum FieldValue: Decodable {
        case name(String), number(Int)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let n = try? c.decode(Int.self) { self = .number(n) } else { self = .name(try c.decode(String.self)) }
        }
    }

    /// Swift's view: size and each field's offset, by the header's field names.
    static func swift<T>(_ type: T.Type, _ fields: KeyValuePairs<String, PartialKeyPath<T>>) -> (Int, [String: Int]) {
        var offsets: [String: Int] = [:]
        for (name, path) in fields { offsets[name] = MemoryLayout<T>.offset(of: path) ?? -1 }
        return (MemoryLayout<T>.size, offsets)
    }

    static let swiftLayouts: [String: (Int, [String: Int])] = [
        "adak_model_params": swift(adak_model_params.self, [
            "size": \.size, "weight_type": \.weight_type, "progress_callback": \.progress_callback,
            "progress_user_data": \.progress_user_data, "repack_q4_0": \.repack_q4_0,
        ]),
        "adak_session_params": swift(adak_session_params.self, [
            "size": \.size, "n_ctx": \.n_ctx, "n_threads": \.n_threads, "n_batch": \.n_batch,
            "seed": \.seed, "kv_type": \.kv_type,
        ]),
        "adak_sampling_params": swift(adak_sampling_params.self, [
            "size": \.size, "temperature": \.temperature, "top_k": \.top_k, "top_p": \.top_p,
            "min_p": \.min_p, "repeat_penalty": \.repeat_penalty, "repeat_last_n": \.repeat_last_n,
            "seed": \.seed,
        ]),
        "adak_routing_params": swift(adak_routing_params.self, [
            "size": \.size, "policy": \.policy, "k": \.k, "k_min": \.k_min, "k_max": \.k_max,
            "p": \.p, "beta": \.beta, "tau": \.tau, "price": \.price, "flops_budget": \.flops_budget,
            "budget_mode": \.budget_mode,
        ]),
        "adak_quantize_params": swift(adak_quantize_params.self, [
            "size": \.size, "ftype": \.ftype, "n_threads": \.n_threads, "allow_requantize": \.allow_requantize,
        ]),
        "adak_stats": swift(adak_stats.self, [
            "size": \.size, "n_moe_layers": \.n_moe_layers, "n_expert": \.n_expert, "k_native": \.k_native,
            "tokens": \.tokens, "mean_k": \.mean_k, "expert_flops": \.expert_flops,
            "expert_flops_topk": \.expert_flops_topk, "expert_fraction": \.expert_fraction,
            "total_flops": \.total_flops, "total_flops_topk": \.total_flops_topk,
            "total_fraction": \.total_fraction,
        ]),
        "adak_chat_message": swift(adak_chat_message.self, ["role": \.role, "content": \.content]),
    ]

    static func cLayouts() throws -> [String: CLayout] {
        let script = Fixtures.repoRoot + "/scripts/abi-layout.py"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, Fixtures.repoRoot + "/include/adak.h"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "scripts/abi-layout.py failed")
        return try JSONDecoder().decode([String: CLayout].self, from: data)
    }

    @Test func everyStructMatchesTheCCompiler() throws {
        let c = try Self.cLayouts()
        #expect(Set(c.keys) == Set(Self.swiftLayouts.keys), "structs in adak.h vs this table")
        for (name, layout) in c {
            guard let (size, offsets) = Self.swiftLayouts[name] else { continue }
            #expect(layout.size == size, "sizeof(\(name)): cc \(layout.size), Swift \(size)")
            var seen = Set<String>()
            for field in layout.fields {
                guard case .name(let f) = field[0], case .number(let off) = field[1] else {
                    Issue.record("malformed row for \(name)")
                    continue
                }
                seen.insert(f)
                #expect(offsets[f] == off, "offsetof(\(name), \(f)): cc \(off), Swift \(offsets[f] ?? -1)")
            }
            #expect(seen == Set(offsets.keys), "fields of \(name): header \(seen.sorted()), table \(offsets.keys.sorted())")
        }
    }

    /// The first version of each struct, the smallest `size` the library accepts, as the header
    /// documents it.
    @Test func firstVersionSizesAreTheDocumentedOnes() {
        #expect(MemoryLayout<adak_model_params>.offset(of: \.progress_callback) == 8)
        #expect(MemoryLayout<adak_session_params>.offset(of: \.kv_type) == 24)
        #expect(MemoryLayout<adak_stats>.size == 80)
        #expect(MemoryLayout<adak_sampling_params>.size == 40)
        #expect(MemoryLayout<adak_routing_params>.offset(of: \.budget_mode) == 48)
        #expect(MemoryLayout<adak_quantize_params>.size == 16)
    }
}
