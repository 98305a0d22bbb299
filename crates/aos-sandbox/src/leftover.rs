//! Commands a crashed daemon left running: their process group is recorded
//! in a pid file; a restarted daemon kills the group if it is still the
//! session's (a member carries the session's marker in its environment).

use std::path::Path;

/// Kills the process group recorded in `pid_file` by a daemon that died, if
/// a member of that group still carries `marker` (e.g.
/// `AOS_SESSION_ID=se_…`) in its environment — so a reused id never hits an
/// unrelated process. Removes the file. Returns whether a group was killed.
pub fn kill_leftover(pid_file: &Path, marker: &str) -> bool {
    let pgid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let _ = std::fs::remove_file(pid_file);
    let Some(pgid) = pgid.filter(|p| *p > 1) else {
        return false;
    };
    if !group_members(pgid).iter().any(|pid| carries(*pid, marker)) {
        return false;
    }
    // SAFETY: killpg takes plain integers; no memory is shared.
    unsafe { libc::killpg(pgid, libc::SIGKILL) == 0 }
}

/// Processes whose process group is `pgid` (from `/proc/<pid>/stat`).
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // `pid (comm) state ppid pgrp …`; comm may hold spaces.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(2)?.parse::<i32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

fn carries(pid: i32, marker: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
}
