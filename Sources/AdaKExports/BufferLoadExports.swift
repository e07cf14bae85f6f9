// adak_model_load_from_buffer: loading a GGUF model from bytes in memory (embedded models,
// downloads that never touch the disk, and the fuzz harness, which must not write temp files).
import AdaK
import CAdaK

@_cdecl("adak_model_load_from_buffer")
public func adak_model_load_from_buffer(_ data: UnsafeRawPointer?, _ size: Int, _ params: UnsafePointer<adak_model_params>?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_model_load_from_buffer"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let data else { return invalid(f, "data is NULL") }
    guard isValidCount(size) else { return invalid(f, "size is out of range") }
    guard let modelParams = modelParams(params, f) else { return Status.invalidArgument }
    do {
        let model = try Model(buffer: UnsafeRawBufferPointer(start: data, count: size), params: modelParams)
        out.pointee = OpaquePointer(register(ModelBox(model: model), as: .model))
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}
