#if canImport(Glibc)
import Glibc
#endif

/// Perplexity with llama.cpp's `llama-perplexity` protocol: non-overlapping windows of `window`
/// tokens, each decoded from an empty context (first token replaced by BOS when the vocabulary
/// adds one), scoring only the second half: logits at positions window/2 … window−2 predict the
/// next token. nll = −log softmax (in double from f32 logits).
public struct PerplexityResult: Sendable {
    public var ppl: Double
    /// ppl · sqrt(var(nll) / (N − 1)), as llama-perplexity prints it.
    public var stderr: Double
    public var scoredTokens: Int
    public var chunkMeanNLL: [Double]
}

public enum Perplexity {
    /// Scores `tokens` in `tokens.count / window` windows (at most `maxChunks` when given).
    /// `onChunk(i, n)` reports progress and may return false to cancel.
    public static func evaluate(session: Session, tokens: [Int32], window: Int = 512, maxChunks: Int? = nil,
                                onChunk: ((Int, Int) -> Bool)? = nil) throws -> PerplexityResult {
        guard window >= 4, window <= session.contextSize else {
            throw AdaKError.invalidArgument("window \(window) must be in 4...\(session.contextSize)")
        }
        var chunks = tokens.count / window
        if let m = maxChunks { chunks = min(chunks, m) }
        guard chunks > 0 else { throw AdaKError.invalidArgument("need at least \(window) tokens, got \(tokens.count)") }
        let tok = session.model.tokenizer
        let v = session.model.config.nVocab
        var sum = 0.0, sum2 = 0.0, count = 0
        var perChunk: [Double] = []
        for c in 0..<chunks {
            var w = Array(tokens[(c * window)..<((c + 1) * window)])
            if tok.addBOS, let bos = tok.bos { w[0] = bos }
            session.reset()
            try session.evaluate(w, allLogits: true)
            var chunkSum = 0.0
            let first = window / 2
            session.withLogits { logits in
                for pos in first..<(window - 1) {
                    let row = logits.baseAddress! + pos * v
                    var mx = row[0]
                    for i in 1..<v where row[i] > mx { mx = row[i] }
                    var s = 0.0
                    for i in 0..<v { s += exp(Double(row[i] - mx)) }
                    let nll = -(Double(row[Int(w[pos + 1])] - mx) - log(s))
                    sum += nll
                    sum2 += nll * nll
                    chunkSum += nll
                    count += 1
                }
            }
            perChunk.append(chunkSum / Double(window - 1 - first))
            if let onChunk, !onChunk(c + 1, chunks) { throw AdaKError.cancelled("perplexity cancelled") }
        }
        let mean = sum / Double(count)
        let ppl = exp(mean)
        let variance = sum2 / Double(count) - mean * mean
        let err = count > 1 ? ppl * (max(variance, 0) / Double(count - 1)).squareRoot() : 0
        return PerplexityResult(ppl: ppl, stderr: err, scoredTokens: count, chunkMeanNLL: perChunk)
    }
}
