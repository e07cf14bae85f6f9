// Library-wide functions: version, status names, last error.
import Glibc

let versionMajor: Int32 = 0
let versionMinor: Int32 = 4
let versionPatch: Int32 = 0

@_cdecl("adak_version")
public func adak_version() -> UnsafePointer<CChar> {
    let s: StaticString = "0.4.0"
    return UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("adak_version_number")
public func adak_version_number() -> Int32 {
    versionMajor * 10000 + versionMinor * 100 + versionPatch
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
