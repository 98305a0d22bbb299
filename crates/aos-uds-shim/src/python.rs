//! The Python `aos_sdk`, shipped inside the daemon and written under
//! `$AOS_HOME/lib/python` for the processes it starts (on their
//! `PYTHONPATH`), so a service needs nothing installed.

use std::path::{Path, PathBuf};

/// The package's source.
pub const SDK: &str = include_str!("../python/aos_sdk/__init__.py");

/// The seed README's 15-line `my-guard` service, verbatim
/// (`skill-templates/python-guard/service.py`).
pub const SEED_MY_GUARD: &str = include_str!("../../../skill-templates/python-guard/service.py");

/// Writes the SDK (when missing or different) and returns the directory to
/// put on `PYTHONPATH`.
pub fn install(home: &Path) -> std::io::Result<PathBuf> {
    let dir = home.join("lib").join("python");
    let pkg = dir.join("aos_sdk");
    let file = pkg.join("__init__.py");
    if std::fs::read(&file).ok().as_deref() != Some(SDK.as_bytes()) {
        std::fs::create_dir_all(&pkg)?;
        // Write aside and rename, so a process starting meanwhile never
        // imports half a file.
        let tmp = pkg.join(format!(".__init__.py.{}", std::process::id()));
        std::fs::write(&tmp, SDK)?;
        std::fs::rename(&tmp, &file)?;
    }
    Ok(dir)
}
