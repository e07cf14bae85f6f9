// Carving through the C ABI (since 0.3): a keyed parameter object (adak_carve_params) and
// adak_carve, which turns a dense GGUF model into an adak-moe mixture of experts. Validation,
// file reading and error mapping only: calibration, clustering and writing are the core's
// (Sources/AdaK/Carving).
import AdaK
import Glibc

public typealias adak_carve_progress_callback =
    @convention(c) (UnsafeMutableRawPointer?, Int32, Int64, Int64) -> Int32

/// The object behind an `adak_carve_params *`: the core's options plus the settings that name
/// files, which are read only when adak_carve runs.
final class CarveParamsBox {
    var options = CarveOptions()
    /// Calibration text file (read by adak_carve); exclusive with options.calibrationText.
    var calibrationPath: String? = nil
    var planIn: String? = nil
    var planOut: String? = nil
}

func carveParamsBox(_ pointer: OpaquePointer?) -> CarveParamsBox? {
    lookup(UnsafeRawPointer(pointer), .carveParams, as: CarveParamsBox.self)
}

/// enum adak_carve_stage in include/adak.h.
func carveStageCode(_ stage: CarveStage) -> Int32 {
    switch stage {
    case .calibrating: return 0
    case .clustering: return 1
    case .writing: return 2
    }
}

/// Reads a whole file as UTF-8 text. Errors: .io (cannot open/read), .invalidArgument (not UTF-8).
func readTextFile(_ path: String, what: String) throws -> String {
    guard let file = fopen(path, "rb") else {
        throw AdaKError.io("cannot open \(what) '\(path)': \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count {
            if ferror(file) != 0 { throw AdaKError.io("cannot read \(what) '\(path)'") }
            break
        }
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw AdaKError.invalidArgument("\(what) '\(path)' is not valid UTF-8")
    }
    return text
}

@_cdecl("adak_carve_params_create")
public func adak_carve_params_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return invalid("adak_carve_params_create", "out is NULL") }
    out.pointee = OpaquePointer(register(CarveParamsBox(), as: .carveParams))
    return Status.ok
}

@_cdecl("adak_carve_params_free")
public func adak_carve_params_free(_ params: OpaquePointer?) {
    unregister(UnsafeRawPointer(params), .carveParams, as: CarveParamsBox.self)
}

@_cdecl("adak_carve_params_set_int")
public func adak_carve_params_set_int(_ params: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Int64) -> Int32 {
    let f = "adak_carve_params_set_int"
    guard let box = carveParamsBox(params) else { return invalid(f, "params is NULL or not a live adak_carve_params") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    // Int64 -> Int is lossless on 64-bit Linux; the core checks every range.
    var o = box.options
    switch name {
    case "experts": o.experts = Int(value)
    case "top_k": o.topK = Int(value)
    case "seed":
        guard value >= 0 else { return invalid(f, "\"seed\" = \(value) is negative") }
        o.seed = UInt64(value)
    case "calib_tokens": o.maxTokens = Int(value)
    case "window": o.window = Int(value)
    case "kmeans_iterations": o.kmeansIterations = Int(value)
    case "threads": o.threads = Int(value)
    default:
        return invalid(f, "unknown integer key \"\(name)\"")
    }
    return store(o, in: box, function: f, key: name)
}

/// Installs carve options the core accepts; on an error nothing changes.
func store(_ o: CarveOptions, in box: CarveParamsBox, function: String, key: String) -> Int32 {
    do {
        try o.validate()
    } catch {
        return fail(error, in: "\(function) \"\(key)\"")
    }
    box.options = o
    return Status.ok
}

@_cdecl("adak_carve_params_set_float")
public func adak_carve_params_set_float(_ params: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Double) -> Int32 {
    let f = "adak_carve_params_set_float"
    guard let box = carveParamsBox(params) else { return invalid(f, "params is NULL or not a live adak_carve_params") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard value.isFinite, abs(value) <= Double(Float.greatestFiniteMagnitude) else {
        return invalid(f, "\"\(name)\" = \(value) is not a finite float")
    }
    var o = box.options
    switch name {
    case "shared_fraction": o.sharedFraction = Float(value)
    case "ridge": o.ridge = Float(value)
    default:
        return invalid(f, "unknown float key \"\(name)\"")
    }
    return store(o, in: box, function: f, key: name)
}

/// Parses "3,5,7" (spaces allowed) into layer indices; "" or "all" means every layer (nil).
func parseLayers(_ text: String) -> [Int]?? {
    let trimmed = text.filter { $0 != " " }
    if trimmed.isEmpty || trimmed == "all" { return .some(nil) }
    var layers: [Int] = []
    for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
        guard let v = Int(part), v >= 0, v < 1 << 20 else { return nil }
        layers.append(v)
    }
    return .some(layers)
}

@_cdecl("adak_carve_params_set_string")
public func adak_carve_params_set_string(_ params: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                         _ value: UnsafePointer<CChar>?) -> Int32 {
    let f = "adak_carve_params_set_string"
    guard let box = carveParamsBox(params) else { return invalid(f, "params is NULL or not a live adak_carve_params") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    var text: String? = nil
    if let value {
        guard let v = hostString(value) else { return invalid(f, "\"\(name)\": value is not valid UTF-8") }
        text = v
    }
    switch name {
    case "calib_text":
        box.options.calibrationText = text
        if text != nil { box.calibrationPath = nil }
    case "calib_path":
        box.calibrationPath = text
        if text != nil { box.options.calibrationText = nil }
    case "plan_in":
        box.planIn = text
    case "plan_out":
        box.planOut = text
    case "expert_type":
        guard let text else { box.options.expertType = .q8_0; return Status.ok }
        guard let type = WeightType(rawValue: text) else {
            return invalid(f, "\"expert_type\" = \"\(text)\" is not one of \"q8_0\", \"q4_0\", \"f32\"")
        }
        box.options.expertType = type
    case "layers":
        guard let text else { box.options.layers = nil; return Status.ok }
        guard let layers = parseLayers(text) else {
            return invalid(f, "\"layers\" = \"\(text)\" is not a comma-separated list of layer indices (or \"all\")")
        }
        box.options.layers = layers
    default:
        return invalid(f, "unknown string key \"\(name)\"")
    }
    return Status.ok
}

@_cdecl("adak_carve")
public func adak_carve(_ densePath: UnsafePointer<CChar>?, _ outPath: UnsafePointer<CChar>?,
                       _ params: OpaquePointer?, _ callback: adak_carve_progress_callback?,
                       _ userData: UnsafeMutableRawPointer?) -> Int32 {
    let f = "adak_carve"
    guard let densePath, let dense = hostString(densePath) else { return invalid(f, "dense_path is NULL or not UTF-8") }
    guard let outPath, let output = hostString(outPath) else { return invalid(f, "out_path is NULL or not UTF-8") }
    guard !output.isEmpty else { return invalid(f, "out_path is empty") }
    let box: CarveParamsBox
    if let params {
        guard let b = carveParamsBox(params) else { return invalid(f, "params is not a live adak_carve_params") }
        box = b
    } else {
        box = CarveParamsBox()
    }
    var options = box.options
    let planIn = box.planIn, planOut = box.planOut, calibrationPath = box.calibrationPath
    do {
        if let planIn {
            options.plan = try CarvePlan(path: planIn)
        } else if let calibrationPath {
            options.calibrationText = try readTextFile(calibrationPath, what: "calibration text")
        } else if options.calibrationText == nil {
            return invalid(f, "no calibration text: set \"calib_text\" or \"calib_path\" (or \"plan_in\")")
        }
        var progress: CarveProgress? = nil
        if let callback {
            let host = HostCallback(function: callback, userData: userData)
            progress = { stage, done, total in
                host.function(host.userData, carveStageCode(stage), Int64(done), Int64(total)) == 0
            }
        }
        let plan = try Carver.carve(dense: dense, output: output, options: options, progress: progress)
        if let planOut { try plan.write(to: planOut) }
        Log.info("carved \(dense) into \(output): \(plan.layers.count) layers, \(plan.experts) experts x \(plan.expertWidth) neurons + \(plan.sharedCount) shared, native K \(plan.expertUsed)")
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}
