//! Capabilities and users, for a daemon running as root: the child clears
//! its bounding set (so no `exec` gives it back root's capabilities), its
//! ambient, effective, permitted and inheritable sets, and optionally
//! becomes another user. Every function here runs in the forked child.

use std::io::Error;

/// The highest capability number the kernel knows (read by the parent).
pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Clears the bounding set and the ambient set.
pub(crate) fn drop_bounding(last: u32) -> std::io::Result<()> {
    for cap in 0..=last {
        // SAFETY: prctl(2) with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        // EINVAL: a capability this kernel does not have.
        if r < 0 && Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return Err(Error::last_os_error());
        }
    }
    // SAFETY: prctl(2) with integer arguments.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })
}

/// Leaves root for `uid`/`gid`, with no supplementary groups.
pub(crate) fn switch_user(uid: u32, gid: u32) -> std::io::Result<()> {
    // SAFETY: setgroups(2) with an empty list, setresgid/setresuid(2).
    unsafe {
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setresgid(gid, gid, gid))?;
        check(libc::setresuid(uid, uid, uid))
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Empties the effective, permitted and inheritable sets.
pub(crate) fn clear() -> std::io::Result<()> {
    const V3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: V3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset(2) with a v3 header and two data structs.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(())
    }
}
