#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only view of bytes that stay valid for the object's lifetime: a memory-mapped file, or
/// an owned copy of a caller's buffer.
public final class MappedFile: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    /// A mapping of a file (whose pages `release` can drop), not an owned copy.
    public let isMapped: Bool

    /// Maps `path` read-only (MAP_PRIVATE). Empty files are rejected.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw AdaKError.io("cannot open '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw AdaKError.io("cannot stat '\(path)': \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw AdaKError.io("'\(path)' is not a regular file")
        }
        let size = Int(st.st_size)
        guard size > 0 else { throw AdaKError.format("'\(path)' is empty") }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw AdaKError.io("cannot map '\(path)': \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        count = size
        isMapped = true
    }

    /// Copies `bytes` into memory owned by this object (64-byte aligned).
    public init(copying bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0, let src = bytes.baseAddress else {
            throw AdaKError.format("empty buffer")
        }
        guard let p = UnsafeMutableRawPointer.allocateAligned(byteCount: bytes.count) else {
            throw AdaKError.outOfMemory("cannot allocate \(bytes.count) bytes")
        }
        p.copyMemory(from: src, byteCount: bytes.count)
        base = UnsafeRawPointer(p)
        count = bytes.count
        isMapped = false
    }

    /// Maps every page of a mapped file now (as llama.cpp's MAP_POPULATE), so the first forward
    /// pass does not stop on a page fault per 4 KiB of weights it reads for the first time (an
    /// expert first chosen during decode would cost ~1 ms of faults). No-op for copies; a kernel
    /// without MADV_POPULATE_READ (Linux < 5.14) gets the asynchronous MADV_WILLNEED hint.
    public func populate() {
        guard isMapped, let p = UnsafeMutableRawPointer(mutating: Optional(base)) else { return }
        if madvise(p, count, 22 /* MADV_POPULATE_READ */) != 0 {
            _ = madvise(p, count, Int32(MADV_WILLNEED))
        }
    }

    /// Drops this process's mapping of the whole pages inside `[p, p + byteCount)` (a mapped file
    /// only; no-op for copies). The bytes stay readable — a later access maps them again from the
    /// page cache — but they no longer count in the resident set: for source tensors that were
    /// converted at load and are not read again.
    public func release(_ p: UnsafeRawPointer, byteCount: Int) {
        guard isMapped, byteCount > 0, p >= base, p + byteCount <= base + count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = (Int(bitPattern: p) + page - 1) / page * page
        let end = (Int(bitPattern: p) + byteCount) / page * page
        guard end > start, let q = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(q, end - start, Int32(MADV_DONTNEED))
        // MADV_RANDOM gives the released range a mapping (VMA) of its own. Without it, a later
        // fault on a page of a tensor that is read from the file maps the page cache around it
        // back in (fault-around: whole large folios on recent kernels, up to 2 MB), released pages
        // included: 12 MB of released Q4_K pages were resident again after loading mixtral-shaped
        // Q4_K_M. Fault-around stays inside one mapping; the hint only turns off readahead for
        // these pages, which are not read again.
        _ = madvise(q, end - start, Int32(MADV_RANDOM))
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            free(UnsafeMutableRawPointer(mutating: base))
        }
    }
}

extension UnsafeMutableRawPointer {
    /// `posix_memalign` with a 64-byte alignment; nil on failure. Free with `free`.
    /// Blocks of 2 MB and more start on a 2 MB boundary and ask for transparent huge pages
    /// (MADV_HUGEPAGE; this host's THP mode is "madvise"): a decode streams ~200 MB of repacked
    /// weights per token, and with 4 KB pages every 4 KB of the stream costs a page walk
    /// (mixtral-shaped Q4_0 decode measured 4-5% faster with huge pages). Without THP support
    /// the advice is ignored.
    static func allocateAligned(byteCount: Int) -> UnsafeMutableRawPointer? {
        var p: UnsafeMutableRawPointer? = nil
        let huge = 2 << 20
        if byteCount >= huge {
            guard posix_memalign(&p, huge, byteCount) == 0, let p else { return nil }
            _ = madvise(p, byteCount / huge * huge, 14 /* MADV_HUGEPAGE */)
            return p
        }
        guard posix_memalign(&p, 64, max(byteCount, 64)) == 0 else { return nil }
        return p
    }
}
