import ArgumentParser
import CAdaKKernels

/// Which kernel each level runs for every entry of the kernel table (CAdaKKernels/dispatch.c).
struct Kernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the kernels: for each one, the level (scalar, avx2, avx512) whose own implementation each level runs.")

    func run() throws {
        _ = akk_init()
        let best = akk_cpu_max_level(), levels = 0..<Int32(AKK_CPU_N_LEVELS.rawValue)
        let name = { (l: Int32) in String(cString: akk_cpu_level_name(l)) }
        print("best level on this CPU: \(name(best))\(akk_cpu_has_bf16() != 0 ? " (BF16 too)" : ""); in force: \(name(akk_cpu_level()))")
        if let w = akk_cpu_warning() { print("note: \(String(cString: w))") }
        let pad = { (s: String, n: Int) in s + String(repeating: " ", count: max(1, n - s.count)) }
        print(pad("kernel", 22) + levels.map { pad(name($0), 8) }.joined())
        for i in 0..<akk_kernel_count() {
            let row = levels.map { l -> String in
                let o = akk_kernel_origin(i, l)
                return pad(o < 0 ? "-" : name(o), 8)
            }
            print(pad(String(cString: akk_kernel_name(i)), 22) + row.joined())
        }
        print("""
            Each column is a level; its entries name the level whose kernel it runs (a level keeps
            the one below's where it has none of its own; "-": this CPU lacks the level).
            "tiled": llama.cpp's tiled order, taken by products of 8 or more activation rows.
            """)
    }
}
