// Host callbacks: the process-wide log callback, and the load-progress callback of
// adak_model_params (read by adak_model_load through `progressCallback(from:size:)`).
import AdaK
import CAdaK
import Glibc

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

/// The progress closure of a host's adak_model_params (nil when the callback is NULL).
func progressCallback(_ callback: adak_progress_callback?, _ userData: UnsafeMutableRawPointer?) -> (@Sendable (Double) -> Bool)? {
    guard let callback else { return nil }
    let host = HostCallback(function: callback, userData: userData)
    return { fraction in host.function(host.userData, Float(fraction)) == 0 }
}
