/// Size limits on what a host or a file may ask of the library, checked before any work is done
/// (documented in README.md, "Security and limits").
public enum ModelLimits {
    /// Largest model accepted from a memory buffer (1 TiB); larger sizes are a host bug.
    public static let maxFileBytes = 1 << 40
}
