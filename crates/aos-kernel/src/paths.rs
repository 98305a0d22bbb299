//! Where a session's commands live on disk: its work dir (their `$HOME` and
//! cwd), its temp dir, and the pid file of the running command.

use crate::KernelConfig;

/// Where the process groups of running commands are recorded, so a daemon
/// restarted after a crash can kill what was left running.
pub(crate) fn running_dir(cfg: &KernelConfig, session_id: &str) -> std::path::PathBuf {
    cfg.home.join("sessions").join(session_id).join("running")
}

/// The session's working directory (the commands' cwd).
pub(crate) fn work_dir(cfg: &KernelConfig, session_id: &str) -> std::path::PathBuf {
    cfg.home.join("sessions").join(session_id).join("work")
}

/// The session's temporary directory (`TMPDIR` of its commands).
pub(crate) fn tmp_dir(cfg: &KernelConfig, session_id: &str) -> std::path::PathBuf {
    cfg.home.join("sessions").join(session_id).join("tmp")
}

/// The file naming the process group of the session's running command
/// (empty between commands). One per session: a session runs one dispatch
/// at a time (its lease).
pub(crate) fn pid_file(cfg: &KernelConfig, session_id: &str) -> std::path::PathBuf {
    running_dir(cfg, session_id).join("command.pid")
}

/// Creates the session's directories and its empty pid file when the
/// session is created, so no command pays for a new inode (a command
/// creates them again if they were removed).
pub(crate) fn make_dirs(cfg: &KernelConfig, session_id: &str) {
    let made = command_dirs(cfg, session_id)
        .map(drop)
        .and_then(|()| std::fs::create_dir_all(running_dir(cfg, session_id)))
        .and_then(|()| std::fs::File::create(pid_file(cfg, session_id)).map(drop));
    if let Err(e) = made {
        tracing::warn!(session = %session_id, error = %e, "cannot create the session's directories");
    }
}

/// Creates the session's work and temp dirs if missing and returns them;
/// when commands run as another user, that user owns them and the session's
/// directory lets it through (traverse only).
pub(crate) fn command_dirs(
    cfg: &KernelConfig,
    session_id: &str,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (work, tmp) = (work_dir(cfg, session_id), tmp_dir(cfg, session_id));
    for dir in [&work, &tmp] {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            if let Some((uid, gid)) = cfg.bash_sandbox.run_as.filter(|_| cfg.bash_sandbox.enabled) {
                use std::os::unix::fs::PermissionsExt;
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
                if let Some(session) = dir.parent() {
                    std::fs::set_permissions(session, std::fs::Permissions::from_mode(0o711))?;
                }
            }
        }
    }
    Ok((work, tmp))
}
