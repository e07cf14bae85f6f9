// adak_model_quantize and its parameters (include/adak.h, "Quantization").
import AdaK

/// adak_quantize_params: size u32 @0, ftype i32 @4, n_threads i32 @8, allow_requantize i32 @12.
private let quantizeParamsSize = 16

@_cdecl("adak_quantize_params_init")
public func adak_quantize_params_init(_ params: UnsafeMutableRawPointer?, _ size: Int) -> Int32 {
    let f = "adak_quantize_params_init"
    guard let params else { return invalid(f, "params is NULL") }
    guard size == quantizeParamsSize else {
        return invalid(f, "size \(size) is not a valid sizeof(adak_quantize_params)")
    }
    params.storeBytes(of: UInt32(size), toByteOffset: 0, as: UInt32.self)
    params.storeBytes(of: Int32(QuantFileType.q8_0.llamaFtype), toByteOffset: 4, as: Int32.self)
    params.storeBytes(of: Int32(0), toByteOffset: 8, as: Int32.self)
    params.storeBytes(of: Int32(1), toByteOffset: 12, as: Int32.self)
    return Status.ok
}

@_cdecl("adak_model_quantize")
public func adak_model_quantize(_ inPath: UnsafePointer<CChar>?, _ outPath: UnsafePointer<CChar>?,
                                _ params: UnsafeRawPointer?) -> Int32 {
    let f = "adak_model_quantize"
    guard let inPath, let input = hostString(inPath), !input.isEmpty else {
        return invalid(f, "in_path is NULL, empty or not UTF-8")
    }
    guard let outPath, let output = hostString(outPath), !output.isEmpty else {
        return invalid(f, "out_path is NULL, empty or not UTF-8")
    }
    var options = QuantizeOptions(fileType: .q8_0)
    if let params {
        let size = Int(params.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard size == quantizeParamsSize else {
            return invalid(f, "params->size \(size) is not a valid sizeof(adak_quantize_params); use adak_quantize_params_init")
        }
        let ftype = params.loadUnaligned(fromByteOffset: 4, as: Int32.self)
        guard let ft = QuantFileType.allCases.first(where: { Int64($0.llamaFtype) == Int64(ftype) }) else {
            return invalid(f, "params->ftype \(ftype) is not an adak_ftype")
        }
        options = QuantizeOptions(fileType: ft)
        options.threads = Int(params.loadUnaligned(fromByteOffset: 8, as: Int32.self))
        switch params.loadUnaligned(fromByteOffset: 12, as: Int32.self) {
        case 0: options.allowRequantize = false
        case 1: options.allowRequantize = true
        case let other: return invalid(f, "params->allow_requantize \(other) is not 0 or 1")
        }
    }
    do {
        let r = try Quantizer.run(input: input, output: output, options: options)
        Log.info("quantized \(input) to \(output) (\(options.fileType.rawValue)): \(r.outputBytes) bytes in \(r.seconds) s")
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}
