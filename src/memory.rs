//! Giving memory back to the system. glibc keeps freed memory in its arenas; after a
//! burst (a connection storm, a large broadcast to every socket) that can be gigabytes
//! resident for nothing.

/// Returns free heap memory to the system (glibc only; elsewhere a no-op).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_heap() {}
