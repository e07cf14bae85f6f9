// adak_model_load_from_buffer: loading a GGUF model from bytes in memory (embedded models,
// downloads that never touch the disk, and the fuzz harness, which must not write temp files).
import AdaK

@_cdecl("adak_model_load_from_buffer")
public func adak_model_load_from_buffer(_ data: UnsafeRawPointer?, _ size: Int, _ params: UnsafeRawPointer?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_model_load_from_buffer"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let data else { return invalid(f, "data is NULL") }
    guard isValidCount(size), size > 0 else { return invalid(f, "size \(size) is out of range") }
    guard size <= ModelLimits.maxFileBytes else {
        return fail(Status.outOfMemory, "\(f): \(size) bytes exceed the limit of \(ModelLimits.maxFileBytes)")
    }
    let modelParams: ModelParams
    switch decodeModelParams(params) {
    case .success(let p): modelParams = p
    case .failure(let message): return invalid(f, message.text)
    }
    do {
        let storage = try MappedFile(copying: UnsafeRawBufferPointer(start: data, count: size))
        let model = try Model(gguf: GGUFFile(storage: storage, origin: "buffer"), params: modelParams)
        out.pointee = OpaquePointer(register(ModelBox(model: model), as: .model))
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}
