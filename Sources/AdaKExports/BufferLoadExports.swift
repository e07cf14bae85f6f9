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
    var modelParams = ModelParams()
    if let params {
        let paramsSize = Int(params.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard paramsSize >= modelParamsMinSize, paramsSize <= modelParamsMaxSize else {
            return invalid(f, "params->size \(paramsSize) is not a valid sizeof(adak_model_params); use adak_model_params_init")
        }
        switch params.loadUnaligned(fromByteOffset: 4, as: Int32.self) {
        case 0, 2: modelParams.weightType = .q8_0
        case 1: modelParams.weightType = .f32
        case 3: modelParams.weightType = .q4_0
        case let other: return invalid(f, "params->weight_type \(other) is not an adak_weight_type")
        }
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
