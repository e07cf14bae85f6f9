// adak_model_*: loading, properties and the tokenizer.
import AdaK
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

// Layout of adak_model_params (append-only): uint32 size @0, int32 weight_type @4.
let modelParamsMinSize = 8
// Since 0.4: int32 repack_q4_0 @24.
let modelParamsRepackEnd = 28
let modelParamsMaxSize = 4096

@_cdecl("adak_model_params_init")
public func adak_model_params_init(_ params: UnsafeMutableRawPointer?, _ size: Int) -> Int32 {
    let f = "adak_model_params_init"
    guard let params else { return invalid(f, "params is NULL") }
    guard size >= modelParamsMinSize, size <= modelParamsMaxSize else {
        return invalid(f, "size \(size) is not a valid sizeof(adak_model_params)")
    }
    params.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    params.storeBytes(of: UInt32(size), toByteOffset: 0, as: UInt32.self)
    params.storeBytes(of: Int32(0), toByteOffset: 4, as: Int32.self)
    // progress_callback and progress_user_data (from size 24 on) are NULL: zeroed above.
    if size >= modelParamsRepackEnd { params.storeBytes(of: Int32(1), toByteOffset: 24, as: Int32.self) }
    return Status.ok
}

struct ParamsError: Error { let text: String }

/// Reads a host's adak_model_params (NULL: defaults), checking its size tag and values.
func decodeModelParams(_ params: UnsafeRawPointer?) -> Result<ModelParams, ParamsError> {
    var modelParams = ModelParams()
    guard let params else { return .success(modelParams) }
    let size = Int(params.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
    guard size >= modelParamsMinSize, size <= modelParamsMaxSize else {
        return .failure(ParamsError(text: "params->size \(size) is not a valid sizeof(adak_model_params); use adak_model_params_init"))
    }
    switch params.loadUnaligned(fromByteOffset: 4, as: Int32.self) {
    case 0, 2: modelParams.weightType = .q8_0
    case 1: modelParams.weightType = .f32
    case 3: modelParams.weightType = .q4_0
    case let other: return .failure(ParamsError(text: "params->weight_type \(other) is not an adak_weight_type"))
    }
    modelParams.progress = progressCallback(from: params, size: size)
    if size >= modelParamsRepackEnd {
        switch params.loadUnaligned(fromByteOffset: 24, as: Int32.self) {
        case 0: modelParams.repack = false
        case 1: modelParams.repack = true
        case let other: return .failure(ParamsError(text: "params->repack_q4_0 \(other) is not 0 or 1"))
        }
    }
    return .success(modelParams)
}

@_cdecl("adak_model_load")
public func adak_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafeRawPointer?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_model_load"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let path else { return invalid(f, "path is NULL") }
    guard let pathString = hostString(path) else { return invalid(f, "path is not valid UTF-8") }
    let modelParams: ModelParams
    switch decodeModelParams(params) {
    case .success(let p): modelParams = p
    case .failure(let message): return invalid(f, message.text)
    }
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
