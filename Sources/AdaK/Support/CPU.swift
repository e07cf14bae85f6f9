import CAdaKKernels

/// The kernel level in force (akk_cpu_level: scalar < avx2 < avx512, chosen from CPUID and
/// ADAK_CPU), for the system information programs print.
public enum CPUInfo {
    /// e.g. "kernels avx512 (CPU best avx512, BF16)"; a lower level or ADAK_CPU's warning is said.
    public static var summary: String {
        let level = akk_cpu_level(), best = akk_cpu_max_level()
        var s = "kernels \(name(level)) (CPU best \(name(best))\(akk_cpu_has_bf16() != 0 ? ", BF16" : "")"
        if let w = akk_cpu_warning() { s += "; \(String(cString: w))" }
        else if level != best { s += "; lowered by ADAK_CPU or a forced level" }
        return s + ")"
    }

    /// Name of the level in force: "scalar", "avx2" or "avx512".
    public static var level: String { name(akk_cpu_level()) }

    static func name(_ l: Int32) -> String { String(cString: akk_cpu_level_name(l)) }

    /// Selects the kernels (once per process) and hands the one-line warning of an ADAK_CPU that
    /// could not be followed to the log.
    static let initialize: Void = {
        _ = akk_init()
        if let w = akk_cpu_warning() { Log.warning(String(cString: w)) }
    }()
}
