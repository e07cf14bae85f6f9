// adak_model_quantize and its parameters (include/adak.h, "Quantization").
import AdaK
import CAdaK

extension adak_quantize_params: SizeTagged {
    static let firstVersionSize = MemoryLayout<adak_quantize_params>.size

    static var defaults: adak_quantize_params {
        var p = adak_quantize_params()
        p.size = UInt32(MemoryLayout<adak_quantize_params>.size)
        p.ftype = Int32(ADAK_FTYPE_Q8_0.rawValue)
        p.n_threads = 0
        p.allow_requantize = 1
        return p
    }
}

@_cdecl("adak_quantize_params_init")
public func adak_quantize_params_init(_ params: UnsafeMutablePointer<adak_quantize_params>?, _ size: Int) -> Int32 {
    initSized(params, size: size, defaults: .defaults, function: "adak_quantize_params_init")
}

@_cdecl("adak_model_quantize")
public func adak_model_quantize(_ inPath: UnsafePointer<CChar>?, _ outPath: UnsafePointer<CChar>?,
                                _ params: UnsafePointer<adak_quantize_params>?) -> Int32 {
    let f = "adak_model_quantize"
    guard let inPath, let input = hostString(inPath) else { return invalid(f, "in_path is NULL or not UTF-8") }
    guard let outPath, let output = hostString(outPath) else { return invalid(f, "out_path is NULL or not UTF-8") }
    var p = adak_quantize_params.defaults
    if let params {
        guard let read = readSized(params, defaults: .defaults, function: f, name: "params") else { return Status.invalidArgument }
        p = read
    }
    // enum adak_ftype carries llama.cpp's file-type numbers, as general.file_type does.
    guard let fileType = QuantFileType.allCases.first(where: { Int64($0.llamaFtype) == Int64(p.ftype) }) else {
        return invalid(f, "params->ftype \(p.ftype) is not an adak_ftype")
    }
    var options = QuantizeOptions(fileType: fileType)
    options.threads = Int(p.n_threads)
    switch p.allow_requantize {
    case 0: options.allowRequantize = false
    case 1: options.allowRequantize = true
    default: return invalid(f, "params->allow_requantize \(p.allow_requantize) is not 0 or 1")
    }
    do {
        let r = try Quantizer.run(input: input, output: output, options: options)
        Log.info("quantized \(input) to \(output) (\(options.fileType.rawValue)): \(r.outputBytes) bytes in \(r.seconds) s")
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}
