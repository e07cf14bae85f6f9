import Testing
@testable import AdaK

@Suite struct GGUFTests {
    @Test func writerRoundTrip() throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("x.arr", .array([.int32(1), .int32(-2)]))
        try w.addTensor(name: "a", dims: [4, 2], values: [1, 2, 3, 4, 5, 6, 7, 8])
        let bytes = w.serialize()
        let g = try bytes.withUnsafeBytes { try GGUFFile(storage: MappedFile(copying: $0)) }
        #expect(g.string("general.architecture") == "llama")
        #expect(g.intArray("x.arr") == [1, -2])
        let t = try #require(g.tensor("a"))
        #expect(t.dims == [4, 2])
        #expect(try g.dequantize(t) == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func truncatedFilesAreRejected() throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        try w.addTensor(name: "a", dims: [64], values: [Float](repeating: 1, count: 64))
        let bytes = w.serialize()
        for cut in stride(from: 0, to: bytes.count - 1, by: 7) {
            let part = Array(bytes[0..<cut])
            #expect(throws: AdaKError.self) {
                _ = try part.withUnsafeBytes { try GGUFFile(storage: MappedFile(copying: $0)) }
            }
        }
    }
}
