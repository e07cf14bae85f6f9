// Library-wide functions: version, status names, last error. The version is the header's.
import CAdaK
import Glibc

/// ADAK_VERSION_STRING as a C string that lives as long as the process (made once, never freed).
nonisolated(unsafe) let versionString: UnsafePointer<CChar> = UnsafePointer(strdup(ADAK_VERSION_STRING)!)

@_cdecl("adak_version")
public func adak_version() -> UnsafePointer<CChar> { versionString }

@_cdecl("adak_version_number")
public func adak_version_number() -> Int32 {
    Int32(ADAK_VERSION_MAJOR) * 10000 + Int32(ADAK_VERSION_MINOR) * 100 + Int32(ADAK_VERSION_PATCH)
}

@_cdecl("adak_status_string")
public func adak_status_string(_ status: Int32) -> UnsafePointer<CChar> {
    let s = Status.name(status)
    return UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("adak_last_error")
public func adak_last_error() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(lastErrorKey) {
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
    let empty: StaticString = ""
    return UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self)
}
