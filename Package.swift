// swift-tools-version: 6.1
import PackageDescription

// LLVM's OpenMP runtime 19 (Debian libomp-19-dev): Swift's clang ships no omp.h, and
// Debian's default libomp (LLVM 14) lacks __kmpc_dispatch_deinit (docs/DESIGN.md §6).
// Another LLVM 19 install: ADAK_LLVM_DIR (the Makefile passes its LLVM_DIR).
let llvm = Context.environment["ADAK_LLVM_DIR"] ?? "/usr/lib/llvm-19"
let openmpC: [CSetting] = [
    .unsafeFlags(["-fopenmp", "-idirafter", "\(llvm)/lib/clang/19/include", "-O3", "-fno-math-errno"]),
]
let openmpLink: [LinkerSetting] = [
    .unsafeFlags(["-L\(llvm)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(llvm)/lib"]),
    .linkedLibrary("omp"),
    .linkedLibrary("openblas"),
    .linkedLibrary("m"),
]

let package = Package(
    name: "libadak",
    products: [
        .library(name: "adak", type: .dynamic, targets: ["AdaKExports"]),
        .executable(name: "adak-cli", targets: ["adak"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CAdaKKernels", cSettings: openmpC, linkerSettings: openmpLink),
        .target(name: "AdaK", dependencies: ["CAdaKKernels"]),
        // include/adak.h seen from Swift (include/module.modulemap): the ABI's structs and constants.
        .systemLibrary(name: "CAdaK", path: "include"),
        .target(name: "AdaKExports", dependencies: ["AdaK", "CAdaK"]),
        .executableTarget(name: "adak", dependencies: [
            "AdaK", "CAdaK", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .testTarget(name: "AdaKTests", dependencies: ["AdaK", "CAdaKKernels", "CAdaK"], exclude: ["Resources"]),
    ]
)
