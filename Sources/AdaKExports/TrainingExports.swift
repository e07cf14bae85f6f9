// Allocator training through the C ABI (since 0.3): a keyed parameter object
// (adak_train_params), adak_train_allocator, and the progress object its callback reads by
// key. Validation, tokenization of the host's text and error mapping only: rollouts and PPO are
// the core's AllocatorTrainer (Sources/AdaK/Training), used through its public API.
import AdaK
import Glibc

public typealias adak_train_progress_callback = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?) -> Int32

/// The object behind an `adak_train_params *`.
final class TrainParamsBox {
    var settings = AllocatorTrainingSettings()
}

/// The object behind the `adak_train_progress *` a training callback receives; live only
/// while the callback runs.
final class TrainProgressBox {
    let progress: AllocatorTrainingProgress
    init(progress: AllocatorTrainingProgress) { self.progress = progress }
}

func trainParamsBox(_ pointer: OpaquePointer?) -> TrainParamsBox? {
    lookup(UnsafeRawPointer(pointer), .trainParams, as: TrainParamsBox.self)
}

func trainProgressBox(_ pointer: OpaquePointer?) -> TrainProgressBox? {
    lookup(UnsafeRawPointer(pointer), .trainProgress, as: TrainProgressBox.self)
}

@_cdecl("adak_train_params_create")
public func adak_train_params_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return invalid("adak_train_params_create", "out is NULL") }
    out.pointee = OpaquePointer(register(TrainParamsBox(), as: .trainParams))
    return Status.ok
}

@_cdecl("adak_train_params_free")
public func adak_train_params_free(_ params: OpaquePointer?) {
    unregister(UnsafeRawPointer(params), .trainParams, as: TrainParamsBox.self)
}

@_cdecl("adak_train_params_set_float")
public func adak_train_params_set_float(_ params: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Double) -> Int32 {
    let f = "adak_train_params_set_float"
    guard let box = trainParamsBox(params) else { return invalid(f, "params is NULL or not a live adak_train_params") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard value.isFinite else { return invalid(f, "\"\(name)\" = \(value) is not finite") }
    var s = box.settings
    switch name {
    case "lambda": s.lambda = value
    case "clip": s.ppo.clip = value
    case "lr": s.ppo.learningRate = value
    case "entropy_coef": s.ppo.entropyCoef = value
    case "max_grad_norm": s.ppo.maxGradNorm = value
    case "future_discount": s.futureDiscount = value
    case "lambda_memory": s.lambdaMemory = value
    case "init_sharpness":
        guard abs(value) <= Double(Float.greatestFiniteMagnitude) else { return invalid(f, "\"\(name)\" = \(value) is not a finite float") }
        s.initSharpness = Float(value)
    default:
        return invalid(f, "unknown float key \"\(name)\"")
    }
    return store(s, in: box, function: f, key: name)
}

/// Installs training settings whose every field the core accepts; on an error nothing changes.
func store(_ s: AllocatorTrainingSettings, in box: TrainParamsBox, function: String, key: String) -> Int32 {
    do {
        try s.validateFields()
    } catch {
        return fail(error, in: "\(function) \"\(key)\"")
    }
    box.settings = s
    return Status.ok
}

@_cdecl("adak_train_params_set_int")
public func adak_train_params_set_int(_ params: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Int64) -> Int32 {
    let f = "adak_train_params_set_int"
    guard let box = trainParamsBox(params) else { return invalid(f, "params is NULL or not a live adak_train_params") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    // Int64 -> Int is lossless on 64-bit Linux; the core checks every range.
    let v = Int(value)
    var s = box.settings
    switch name {
    case "rollout_tokens": s.rolloutTokens = v
    case "window": s.window = v
    case "epochs": s.ppo.epochs = v
    case "minibatch": s.ppo.minibatch = v
    case "seed":
        guard value >= 0 else { return invalid(f, "\"seed\" = \(value) is negative") }
        s.seed = UInt64(value)
    case "k_min": s.kMin = v
    case "k_max":
        guard v >= 0 else { return invalid(f, "\"k_max\" = \(v) is negative (0: all experts)") }
        s.kMax = v == 0 ? nil : v
    case "updates": s.updates = v
    case "total_tokens":
        guard v >= 0 else { return invalid(f, "\"total_tokens\" = \(v) is negative (0: no limit)") }
        s.totalTokens = v == 0 ? nil : v
    case "threads": s.threads = v
    case "checkpoint_every": s.checkpointEvery = v
    case "sample_window": s.sampleWindow = v
    default:
        return invalid(f, "unknown integer key \"\(name)\"")
    }
    return store(s, in: box, function: f, key: name)
}

@_cdecl("adak_train_params_set_string")
public func adak_train_params_set_string(_ params: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                         _ value: UnsafePointer<CChar>?) -> Int32 {
    let f = "adak_train_params_set_string"
    guard let box = trainParamsBox(params) else { return invalid(f, "params is NULL or not a live adak_train_params") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let value, let text = hostString(value) else { return invalid(f, "\"\(name)\": value is NULL or not UTF-8") }
    switch name {
    case "baseline":
        guard let b = AdvantageBaseline(rawValue: text) else {
            let known = AdvantageBaseline.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            return invalid(f, "\"baseline\" = \"\(text)\" is not one of \(known)")
        }
        box.settings.baseline = b
    case "cost_credit":
        guard let c = CostCredit(rawValue: text) else {
            let known = CostCredit.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            return invalid(f, "\"cost_credit\" = \"\(text)\" is not one of \(known)")
        }
        box.settings.costCredit = c
    case "train_budgets":
        var budgets: [Float] = []
        for part in text.isEmpty ? [] : text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = String(part.filter { $0 != " " })
            guard let b = Float(item), b.isFinite else {
                return invalid(f, "\"train_budgets\" = \"\(text)\": \"\(item)\" is not a number")
            }
            budgets.append(b)
        }
        var s = box.settings
        s.trainBudgets = budgets
        return store(s, in: box, function: f, key: name)
    default:
        return invalid(f, "unknown string key \"\(name)\"")
    }
    return Status.ok
}

// MARK: - progress object

@_cdecl("adak_train_progress_get_int")
public func adak_train_progress_get_int(_ progress: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                        _ value: UnsafeMutablePointer<Int64>?) -> Int32 {
    let f = "adak_train_progress_get_int"
    guard let box = trainProgressBox(progress) else {
        return invalid(f, "progress is NULL or not the adak_train_progress of a running callback")
    }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let value else { return invalid(f, "value is NULL") }
    let p = box.progress
    switch name {
    case "update": value.pointee = Int64(p.update)
    case "updates": value.pointee = Int64(p.updates)
    case "tokens": value.pointee = Int64(p.tokens)
    case "n_moe_layers": value.pointee = Int64(p.meanKPerLayer.count)
    default: return invalid(f, "unknown integer key \"\(name)\"")
    }
    return Status.ok
}

@_cdecl("adak_train_progress_get_float")
public func adak_train_progress_get_float(_ progress: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                          _ value: UnsafeMutablePointer<Double>?) -> Int32 {
    let f = "adak_train_progress_get_float"
    guard let box = trainProgressBox(progress) else {
        return invalid(f, "progress is NULL or not the adak_train_progress of a running callback")
    }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let value else { return invalid(f, "value is NULL") }
    let p = box.progress
    let result: Double
    switch name {
    case "mean_reward": result = p.meanReward
    case "mean_log_prob": result = p.meanLogProb
    case "cost_fraction": result = p.costFraction
    case "greedy_log_prob": result = p.greedyLogProb
    case "greedy_cost_fraction": result = p.greedyCostFraction
    case "approx_kl": result = p.ppo.approxKL
    case "clip_fraction": result = p.ppo.clipFraction
    case "entropy": result = p.ppo.entropy
    case "grad_norm": result = p.ppo.gradNorm
    case "tokens_per_second": result = p.tokensPerSecond
    case "elapsed_seconds": result = p.elapsedSeconds
    case "eta_seconds": result = p.etaSeconds
    default: return invalid(f, "unknown float key \"\(name)\"")
    }
    value.pointee = result
    return Status.ok
}

@_cdecl("adak_train_progress_get_mean_k_per_layer")
public func adak_train_progress_get_mean_k_per_layer(_ progress: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?,
                                                     _ capacity: Int, _ n: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_train_progress_get_mean_k_per_layer"
    guard let box = trainProgressBox(progress) else {
        return invalid(f, "progress is NULL or not the adak_train_progress of a running callback")
    }
    guard let n else { return invalid(f, "n is NULL") }
    guard isValidCount(capacity) else { return invalid(f, "capacity is out of range") }
    guard out != nil || capacity == 0 else { return invalid(f, "out is NULL but capacity is \(capacity)") }
    let values = box.progress.meanKPerLayer
    n.pointee = values.count
    guard capacity >= values.count else {
        return fail(Status.bufferTooSmall, "\(f): \(values.count) layers, the buffer has \(capacity)")
    }
    if let out { for (i, v) in values.enumerated() { out[i] = v } }
    return Status.ok
}

// MARK: - training

/// Tokens of the training text: only the prefix the run can use (≈ 8 bytes per token is
/// ample), cut at a line end, tokenized without special tokens, as `adak train-allocator` does.
func trainingTokens(_ model: Model, text: UnsafePointer<CChar>, settings s: AllocatorTrainingSettings) -> [Int32]? {
    let length = strlen(text)
    let window = max(s.window, 2)
    let windowsPerUpdate = max(1, (s.rolloutTokens + window - 2) / (window - 1))
    let perUpdate = windowsPerUpdate.multipliedReportingOverflow(by: window)
    var wanted = Int.max
    if !perUpdate.overflow {
        let all = s.updates.multipliedReportingOverflow(by: perUpdate.partialValue)
        if !all.overflow { wanted = all.partialValue }
        if let t = s.totalTokens {
            let (sum, o) = t.addingReportingOverflow(perUpdate.partialValue)
            if !o { wanted = min(wanted, sum) }
        }
    }
    let (scaled, o1) = wanted.multipliedReportingOverflow(by: 8)
    let (limit, o2) = scaled.addingReportingOverflow(4096)
    let take = (o1 || o2) ? length : min(length, limit)
    var bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self), count: take))
    if take < length {
        let cut = bytes
        while let last = bytes.last, last != 10 { bytes.removeLast() }
        if bytes.isEmpty {   // one long line: cut at a UTF-8 character boundary instead
            bytes = cut
            var drop = 0
            while drop < 4, drop < bytes.count, String(validating: bytes.dropLast(drop), as: UTF8.self) == nil { drop += 1 }
            bytes.removeLast(drop)
        }
    }
    guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
    return model.tokenizer.tokenize(bytes, addSpecial: false, parseSpecial: false)
}

@_cdecl("adak_train_allocator")
public func adak_train_allocator(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?,
                                 _ tokens: UnsafePointer<Int32>?, _ nTokens: Int,
                                 _ params: OpaquePointer?, _ outPath: UnsafePointer<CChar>?, _ resume: Int32,
                                 _ callback: adak_train_progress_callback?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    let f = "adak_train_allocator"
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard let outPath, let out = hostString(outPath) else { return invalid(f, "out_path is NULL or not UTF-8") }
    guard !out.isEmpty else { return invalid(f, "out_path is empty") }
    guard resume == 0 || resume == 1 else { return invalid(f, "resume must be 0 or 1, not \(resume)") }
    let settings: AllocatorTrainingSettings
    if let params {
        guard let p = trainParamsBox(params) else { return invalid(f, "params is not a live adak_train_params") }
        settings = p.settings
    } else {
        settings = AllocatorTrainingSettings()
    }
    let m = box.model
    guard !m.moeLayerIndices.isEmpty, m.config.isMoE else {
        return invalid(f, "the model has no MoE layers: allocators only exist for MoE models")
    }
    do {
        try settings.validate(model: m)
    } catch {
        return fail(error, in: f)
    }
    let data: [Int32]
    switch (text, tokens) {
    case (.some, .some):
        return invalid(f, "give either text or tokens, not both")
    case (.some(let t), nil):
        guard nTokens == 0 else { return invalid(f, "n_tokens must be 0 when text is given") }
        guard let d = trainingTokens(m, text: t, settings: settings) else { return invalid(f, "text is not valid UTF-8") }
        data = d
    case (nil, .some(let t)):
        guard isValidCount(nTokens) else { return invalid(f, "n_tokens is out of range") }
        let nVocab = Int32(m.config.nVocab)
        let buffer = UnsafeBufferPointer(start: t, count: nTokens)
        if let bad = buffer.firstIndex(where: { $0 < 0 || $0 >= nVocab }) {
            return invalid(f, "tokens[\(bad)] = \(buffer[bad]) is outside [0, \(nVocab))")
        }
        data = Array(buffer)
    case (nil, nil):
        return invalid(f, "no training data: text and tokens are both NULL")
    }
    do {
        let trainer = resume == 1
            ? try AllocatorTrainer(resuming: out, model: m, tokens: data, settings: settings)
            : try AllocatorTrainer(model: m, tokens: data, settings: settings)
        var report: ((AllocatorTrainingProgress) -> Bool)? = nil
        if let callback {
            let host = HostCallback(function: callback, userData: userData)
            report = { p in
                let pointer = register(TrainProgressBox(progress: p), as: .trainProgress)
                defer { unregister(pointer, .trainProgress, as: TrainProgressBox.self) }
                return host.function(host.userData, OpaquePointer(pointer)) == 0
            }
        }
        try trainer.run(checkpointPath: out, progress: report)
        Log.info("allocator trained: \(trainer.updatesDone) updates, \(trainer.tokensDone) sampled tokens; wrote \(out)")
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}
