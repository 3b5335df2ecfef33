//! The store directory: there or creatable, writable by this user, closed to everyone else
//! (it holds customers' emails and spend), and whether a running daemon holds it.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fs2::FileExt;

use super::{CheckReport, Outcome};
use crate::config::Settings;

/// One line for `store.path`. Nothing is created or changed but a probe file, removed at
/// once, in the directory that must be writable.
pub(super) fn check(settings: &Settings, report: &mut CheckReport) {
    report.push("store", outcome(&settings.store.path));
}

fn outcome(path: &Path) -> Outcome {
    let Ok(meta) = std::fs::metadata(path) else {
        let Some(parent) = path.ancestors().skip(1).find(|a| a.is_dir()) else {
            return Outcome::Failed(format!(
                "{} does not exist and no parent directory does; set `store.path`",
                path.display()
            ));
        };
        return match writable(parent) {
            Ok(()) => Outcome::Ok(format!(
                "{} does not exist yet; the first run creates it (mode 0700) in {}",
                path.display(),
                parent.display()
            )),
            Err(error) => Outcome::Failed(format!(
                "{} does not exist and cannot be created: {} is not writable by this user ({error}); create it for the tiersync user with mode 0700 or set `store.path`",
                path.display(),
                parent.display()
            )),
        };
    };
    if !meta.is_dir() {
        return Outcome::Failed(format!(
            "{} is not a directory; set `store.path` to a directory",
            path.display()
        ));
    }
    if let Err(error) = writable(path) {
        return Outcome::Failed(format!(
            "{} is not writable by this user ({error}); give it to the user tiersync runs as",
            path.display()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Outcome::Failed(format!(
            "{} has mode {mode:04o}: other users can read customers' emails and spend; run `chmod 700 {}`",
            path.display(),
            path.display()
        ));
    }
    if in_use(path) {
        Outcome::Ok(format!(
            "{}: writable, mode 0700, in use by a running tiersync (the daemon runs)",
            path.display()
        ))
    } else {
        Outcome::Ok(format!("{}: writable, mode 0700", path.display()))
    }
}

/// Creates and removes a probe file in `dir`.
fn writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".tiersync-check-{}", std::process::id()));
    File::create(&probe)?;
    std::fs::remove_file(&probe)
}

/// Whether another process holds sled's lock on the store (sled 0.34 takes an exclusive
/// `flock` on the `db` file with `fs2`; a shared one is refused while it is held).
fn in_use(path: &Path) -> bool {
    let Ok(file) = File::open(path.join("db")) else {
        return false;
    };
    match FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            false
        }
        Err(error) => error.kind() == ErrorKind::WouldBlock,
    }
}
