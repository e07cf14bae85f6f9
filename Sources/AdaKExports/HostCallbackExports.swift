// Host callbacks: the process-wide log callback, and the load-progress callback of
// adak_model_params (read by adak_model_load through `progressCallback(from:size:)`).
import AdaK
import Glibc

public typealias adak_log_callback = @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void
public typealias adak_progress_callback = @convention(c) (UnsafeMutableRawPointer?, Float) -> Int32

/// A host function pointer with its user_data. The host promises (adak.h) that the callback may
/// be called from any thread, so carrying the pointer across threads is its contract.
struct HostCallback<F>: @unchecked Sendable {
    let function: F
    let userData: UnsafeMutableRawPointer?
}

@_cdecl("adak_set_log_callback")
public func adak_set_log_callback(_ callback: adak_log_callback?, _ userData: UnsafeMutableRawPointer?) {
    guard let callback else {
        Log.setSink(nil)
        return
    }
    let host = HostCallback(function: callback, userData: userData)
    Log.setSink { level, message in
        message.withCString { host.function(host.userData, level.rawValue, $0) }
    }
}

// Layout of adak_model_params from 0.2 on: ... @8 progress_callback, @16 progress_user_data.
let modelParamsProgressEnd = 24

/// The progress closure of a host's adak_model_params, or nil when the struct predates the
/// field (size < 24) or the callback is NULL.
func progressCallback(from params: UnsafeRawPointer, size: Int) -> (@Sendable (Double) -> Bool)? {
    guard size >= modelParamsProgressEnd else { return nil }
    let raw = params.loadUnaligned(fromByteOffset: 8, as: UnsafeRawPointer?.self)
    guard let raw else { return nil }
    let host = HostCallback(function: unsafeBitCast(raw, to: adak_progress_callback.self),
                            userData: params.loadUnaligned(fromByteOffset: 16, as: UnsafeMutableRawPointer?.self))
    return { fraction in host.function(host.userData, Float(fraction)) == 0 }
}
