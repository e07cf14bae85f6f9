// adak_model_*: loading, properties and the tokenizer.
import AdaK
import CAdaK
import Glibc

/// The object behind an `adak_model *`: the shared model plus the C strings handed out by
/// adak_model_get_string, which live as long as the box.
final class ModelBox {
    let model: Model
    let arch: UnsafeMutablePointer<CChar>?
    let name: UnsafeMutablePointer<CChar>?
    let chatTemplate: UnsafeMutablePointer<CChar>?

    init(model: Model) {
        self.model = model
        arch = strdup(model.config.arch)
        name = strdup(model.config.name)
        chatTemplate = model.tokenizer.chatTemplate.flatMap { strdup($0) }
    }

    deinit {
        free(arch)
        free(name)
        free(chatTemplate)
    }
}

func modelBox(_ pointer: OpaquePointer?) -> ModelBox? {
    lookup(UnsafeRawPointer(pointer), .model, as: ModelBox.self)
}

extension adak_model_params: SizeTagged {
    /// 0.1's struct ended where 0.2's progress callback starts.
    static let firstVersionSize = MemoryLayout<adak_model_params>.offset(of: \.progress_callback)!

    static var defaults: adak_model_params {
        var p = adak_model_params()
        p.size = UInt32(MemoryLayout<adak_model_params>.size)
        p.weight_type = Int32(ADAK_WEIGHT_DEFAULT.rawValue)
        p.repack_q4_0 = 1
        return p
    }
}

@_cdecl("adak_model_params_init")
public func adak_model_params_init(_ params: UnsafeMutablePointer<adak_model_params>?, _ size: Int) -> Int32 {
    initSized(params, size: size, defaults: .defaults, function: "adak_model_params_init")
}

/// The core's load parameters from a host's adak_model_params (NULL: defaults); nil after
/// recording the error.
func modelParams(_ params: UnsafePointer<adak_model_params>?, _ f: String) -> ModelParams? {
    var m = ModelParams()
    guard let params else { return m }
    guard let p = readSized(params, defaults: .defaults, function: f, name: "params") else { return nil }
    switch UInt32(bitPattern: p.weight_type) {
    case ADAK_WEIGHT_DEFAULT.rawValue, ADAK_WEIGHT_Q8_0.rawValue: m.weightType = .q8_0
    case ADAK_WEIGHT_F32.rawValue: m.weightType = .f32
    case ADAK_WEIGHT_Q4_0.rawValue: m.weightType = .q4_0
    default:
        invalid(f, "params->weight_type \(p.weight_type) is not an adak_weight_type")
        return nil
    }
    m.progress = progressCallback(p.progress_callback, p.progress_user_data)
    switch p.repack_q4_0 {
    case 0: m.repack = false
    case 1: m.repack = true
    default:
        invalid(f, "params->repack_q4_0 \(p.repack_q4_0) is not 0 or 1")
        return nil
    }
    return m
}

@_cdecl("adak_model_load")
public func adak_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<adak_model_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_model_load"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let path else { return invalid(f, "path is NULL") }
    guard let pathString = hostString(path) else { return invalid(f, "path is not valid UTF-8") }
    guard let modelParams = modelParams(params, f) else { return Status.invalidArgument }
    do {
        let model = try Model(path: pathString, params: modelParams)
        out.pointee = OpaquePointer(register(ModelBox(model: model), as: .model))
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_model_free")
public func adak_model_free(_ model: OpaquePointer?) {
    unregister(UnsafeRawPointer(model), .model, as: ModelBox.self)
}

@_cdecl("adak_model_get_int")
public func adak_model_get_int(_ model: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                               _ value: UnsafeMutablePointer<Int64>?) -> Int32 {
    let f = "adak_model_get_int"
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let value else { return invalid(f, "value is NULL") }
    let c = box.model.config, t = box.model.tokenizer
    let result: Int
    switch name {
    case "n_layer": result = c.nLayer
    case "n_embd": result = c.nEmbd
    case "n_head": result = c.nHead
    case "n_head_kv": result = c.nHeadKV
    case "head_dim": result = c.headDim
    case "n_ff": result = c.nFF
    case "n_expert": result = c.nExpert
    case "n_expert_used": result = c.nExpertUsed
    case "n_vocab": result = c.nVocab
    case "n_ctx_train": result = c.contextLength
    case "bos": result = Int(t.bos ?? -1)
    case "eos": result = Int(t.eos ?? -1)
    case "add_bos": result = t.addBOS ? 1 : 0
    case "add_eos": result = t.addEOS ? 1 : 0
    default: return invalid(f, "unknown key \"\(name)\"")
    }
    value.pointee = Int64(result)
    return Status.ok
}

@_cdecl("adak_model_get_string")
public func adak_model_get_string(_ model: OpaquePointer?, _ key: UnsafePointer<CChar>?) -> UnsafePointer<CChar>? {
    let f = "adak_model_get_string"
    guard let box = modelBox(model) else {
        invalid(f, "model is NULL or not a live adak_model")
        return nil
    }
    guard let key, let name = hostString(key) else {
        invalid(f, "key is NULL or not UTF-8")
        return nil
    }
    switch name {
    case "arch": return UnsafePointer(box.arch)
    case "name": return UnsafePointer(box.name)
    case "chat_template": return UnsafePointer(box.chatTemplate)
    default:
        invalid(f, "unknown key \"\(name)\"")
        return nil
    }
}

@_cdecl("adak_model_n_vocab")
public func adak_model_n_vocab(_ model: OpaquePointer?) -> Int32 {
    guard let box = modelBox(model) else {
        return invalid("adak_model_n_vocab", "model is NULL or not a live adak_model")
    }
    return Int32(clamping: box.model.config.nVocab)
}

@_cdecl("adak_model_bos")
public func adak_model_bos(_ model: OpaquePointer?) -> Int32 {
    guard let box = modelBox(model) else {
        invalid("adak_model_bos", "model is NULL or not a live adak_model")
        return -1
    }
    return box.model.tokenizer.bos ?? -1
}

@_cdecl("adak_model_eos")
public func adak_model_eos(_ model: OpaquePointer?) -> Int32 {
    guard let box = modelBox(model) else {
        invalid("adak_model_eos", "model is NULL or not a live adak_model")
        return -1
    }
    return box.model.tokenizer.eos ?? -1
}

@_cdecl("adak_model_is_eog")
public func adak_model_is_eog(_ model: OpaquePointer?, _ token: Int32) -> Int32 {
    guard let box = modelBox(model) else {
        invalid("adak_model_is_eog", "model is NULL or not a live adak_model")
        return 0
    }
    let t = box.model.tokenizer
    return t.isValid(token) && t.isEndOfGeneration(token) ? 1 : 0
}

@_cdecl("adak_model_tokenize")
public func adak_model_tokenize(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ length: Int,
                                _ flags: UInt32, _ tokens: UnsafeMutablePointer<Int32>?, _ capacity: Int,
                                _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_model_tokenize"
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard let count else { return invalid(f, "n_tokens is NULL") }
    guard isValidCount(length), isValidCount(capacity) else { return invalid(f, "len or capacity is out of range") }
    guard text != nil || length == 0 else { return invalid(f, "text is NULL but len is \(length)") }
    guard tokens != nil || capacity == 0 else { return invalid(f, "tokens is NULL but capacity is \(capacity)") }
    guard flags & ~UInt32(3) == 0 else { return invalid(f, "unknown flags 0x\(String(flags, radix: 16))") }
    var bytes: [UInt8] = []
    if let text, length > 0 {
        bytes = Array(UnsafeRawBufferPointer(start: text, count: length))
    }
    let ids = box.model.tokenizer.tokenize(bytes, addSpecial: flags & 1 != 0, parseSpecial: flags & 2 != 0)
    count.pointee = ids.count
    guard capacity >= ids.count else {
        return fail(Status.bufferTooSmall, "\(f): the text needs \(ids.count) tokens, the buffer has \(capacity)")
    }
    if let tokens {
        for (i, id) in ids.enumerated() { tokens[i] = id }
    }
    return Status.ok
}

@_cdecl("adak_model_token_to_piece")
public func adak_model_token_to_piece(_ model: OpaquePointer?, _ token: Int32, _ flags: UInt32,
                                      _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                      _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_model_token_to_piece"
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard let length else { return invalid(f, "len is NULL") }
    guard isValidCount(capacity) else { return invalid(f, "capacity is out of range") }
    guard buffer != nil || capacity == 0 else { return invalid(f, "buf is NULL but capacity is \(capacity)") }
    guard flags & ~UInt32(1) == 0 else { return invalid(f, "unknown flags 0x\(String(flags, radix: 16))") }
    let t = box.model.tokenizer
    guard t.isValid(token) else { return invalid(f, "token \(token) is not in [0, \(t.vocabSize))") }
    return writeText(t.piece(token, special: flags & 1 != 0), to: buffer, capacity: capacity,
                     length: length, function: f)
}

@_cdecl("adak_model_detokenize")
public func adak_model_detokenize(_ model: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int,
                                  _ flags: UInt32, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                  _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_model_detokenize"
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard let length else { return invalid(f, "len is NULL") }
    guard isValidCount(n), isValidCount(capacity) else { return invalid(f, "n or capacity is out of range") }
    guard tokens != nil || n == 0 else { return invalid(f, "tokens is NULL but n is \(n)") }
    guard buffer != nil || capacity == 0 else { return invalid(f, "buf is NULL but capacity is \(capacity)") }
    guard flags & ~UInt32(3) == 0 else { return invalid(f, "unknown flags 0x\(String(flags, radix: 16))") }
    let t = box.model.tokenizer
    var ids: [Int32] = []
    if let tokens, n > 0 {
        ids = Array(UnsafeBufferPointer(start: tokens, count: n))
    }
    for (i, id) in ids.enumerated() where !t.isValid(id) {
        return invalid(f, "tokens[\(i)] = \(id) is not in [0, \(t.vocabSize))")
    }
    let text = t.detokenize(ids, removeSpecial: flags & 1 != 0, unparseSpecial: flags & 2 != 0)
    return writeText(text, to: buffer, capacity: capacity, length: length, function: f)
}
