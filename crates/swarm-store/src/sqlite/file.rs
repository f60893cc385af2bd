//! The store file itself: refusing what is not a store (or one of a newer swarm)
//! before touching it, preparing a new one (mode 0600), and naming what failed
//! (damaged, full disk, not writable, busy) with what to do.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

use crate::StoreError;
use swarm_core::version::{self, Version};

use super::*;

pub(super) fn file_error(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::File {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

pub(super) fn locate<T>(path: &Path, result: Result<T, StoreError>) -> Result<T, StoreError> {
    result.map_err(|error| match file_failure(&error) {
        Some((message, hint)) => unusable(path, message, hint),
        None => error,
    })
}

pub(super) fn unusable(path: &Path, message: String, hint: &str) -> StoreError {
    let path = path.display().to_string();
    StoreError::Unusable {
        hint: hint.replace("FILE", &path),
        path,
        message,
    }
}

/// An I/O failure on the file itself, before SQLite has it.
pub(super) fn io_failure(path: &Path, error: &std::io::Error) -> StoreError {
    let hint = match error.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => READ_ONLY,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge => FULL,
        _ => return file_error(path, error),
    };
    unusable(path, error.to_string(), hint)
}

/// The first 16 bytes of every SQLite database.
pub(super) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The database size its header gives (page size × page count), when the header
/// vouches for it: SQLite trusts that count only while the change counter (offset 24)
/// matches the version-valid-for number (offset 92).
pub(super) fn size_in_header(header: &[u8]) -> Option<u64> {
    let be32 = |at: usize| {
        header
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let page_size = match header.get(16..18)? {
        [0, 1] => 65_536,
        [hi, lo] => u64::from(u16::from_be_bytes([*hi, *lo])),
        _ => return None,
    };
    let pages = u64::from(be32(28)?);
    (pages > 0 && be32(24)? == be32(92)?).then_some(page_size * pages)
}

/// A WAL with frames in it may hold pages the file itself does not have yet.
pub(super) fn has_wal(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|meta| meta.len() > 0)
}

/// Opens (creating it mode 0600 if missing) the file, and refuses what is not a store:
/// a folder, a FIFO or device (whose open would block, or take our chmod), or a file
/// that is not SQLite. Only then is the mode tightened, so a wrong `--db` changes nothing.
/// Whether `path` starts like an SQLite database (read only; absent is no).
pub(super) fn looks_like_sqlite(path: &Path) -> bool {
    let mut header = [0_u8; 16];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header))
        .is_ok_and(|()| header.starts_with(SQLITE_HEADER))
}

/// Looks at an existing store without writing to it (no journal mode change, no
/// migration): a newer schema or a newer major version is refused here.
pub(super) async fn probe_openable(path: &Path) -> Result<(), StoreError> {
    // Absent, empty or not SQLite: `prepare_file` creates it or names the problem.
    // A WAL beside it: another process may be writing, which an immutable read must
    // not race; the same checks run again under the write lock at open.
    if !looks_like_sqlite(path) || has_wal(path) {
        return Ok(());
    }
    // Immutable: no lock, no -wal or -shm file made.
    let connection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true)
        .connect()
        .await;
    // Only a refusal counts here: a probe that cannot read leaves it to the open.
    let Ok(mut connection) = connection else {
        return Ok(());
    };
    let result = async {
        let found: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut connection)
            .await?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found > 0 {
            refuse_newer_major(stored_version(&mut connection).await?.as_ref())?;
        }
        Ok(())
    }
    .await;
    let _ = connection.close().await;
    match result {
        Err(refused) if refused.is_refused_unchanged() => Err(refused),
        _ => Ok(()),
    }
}

/// The `swarm_version` the store's meta table holds, if any.
pub(super) async fn stored_version(
    connection: &mut SqliteConnection,
) -> Result<Option<Version>, StoreError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'swarm_version'")
            .fetch_optional(&mut *connection)
            .await?;
    text.map(|text| {
        Version::parse(&text)
            .map_err(|error| StoreError::Corrupt(format!("swarm_version {text:?}: {error}")))
    })
    .transpose()
}

pub(super) fn refuse_newer_major(written_by: Option<&Version>) -> Result<(), StoreError> {
    let ours = version::current();
    match written_by {
        Some(stored) if !version::store_opens(&ours, stored) => Err(StoreError::NewerVersion {
            found: stored.to_string(),
            ours: ours.to_string(),
        }),
        _ => Ok(()),
    }
}

pub(super) fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(file_error(
            path,
            "not a regular file; give the path of a file (it is created if missing)",
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| io_failure(path, &error))?;
    // The database header is the first 100 bytes.
    let mut header = Vec::with_capacity(100);
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, 100), &mut header)
        .map_err(|error| io_failure(path, &error))?;
    if !header.is_empty() && !header.starts_with(SQLITE_HEADER) {
        return Err(unusable(
            path,
            "not an SQLite database (its first bytes are not SQLite's header)".to_owned(),
            "give the path of a swarm store, or of a file that does not exist yet; \
             if this was a store, it is damaged: put back a backup of it",
        ));
    }
    if let Some(expected) = size_in_header(&header)
        && !has_wal(path)
    {
        let actual = file
            .metadata()
            .map_err(|error| io_failure(path, &error))?
            .len();
        // SQLite opens a cut file without a word and fails only on the pages that
        // are gone, so a write could go on around the hole; refuse it at once.
        if actual < expected {
            return Err(unusable(
                path,
                format!("the file is cut short: {actual} bytes, its header says {expected}"),
                DAMAGED,
            ));
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|error| io_failure(path, &error))
}

pub(super) const DAMAGED: &str = "the file is damaged: keep a copy of it, then put back a backup of it \
    (`sqlite3 FILE .recover` may save what is left) and run `swarm reconcile`";
pub(super) const FULL: &str = "the disk is full (or a file size limit was reached): free some space \
    and run the command again; what was committed before is kept";
pub(super) const IO: &str = "reading or writing the file failed: check the disk (is it full or failing?) \
    and run the command again; what was committed before is kept";
pub(super) const READ_ONLY: &str = "swarm cannot write the file or its folder: make both writable \
    for you (SQLite also writes FILE-wal and FILE-shm beside it)";
pub(super) const BUSY: &str =
    "another swarm process holds the store: run the command again when it is done";

/// What to do about a failure of the store file itself, or `None` when the failure is
/// not the file's (a unique name, a newer schema, another Fly...).
pub(super) fn file_failure(error: &StoreError) -> Option<(String, &'static str)> {
    match error {
        StoreError::Corrupt(message) => {
            Some((format!("a record is unreadable ({message})"), DAMAGED))
        }
        StoreError::Database(sqlx::Error::Database(db)) => {
            let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            let hint = match code & 0xff {
                11 | 26 => DAMAGED,
                13 => FULL,
                10 => IO,
                8 | 14 | 3 | 23 => READ_ONLY,
                5 | 6 => BUSY,
                _ => return None,
            };
            Some((db.message().to_owned(), hint))
        }
        StoreError::Database(sqlx::Error::Io(io)) => {
            let hint = match io.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge => FULL,
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    READ_ONLY
                }
                _ => IO,
            };
            Some((io.to_string(), hint))
        }
        // Text that is not the UTF-8 we wrote: bytes changed under SQLite's feet.
        StoreError::Database(
            error @ (sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)),
        ) => Some((error.to_string(), DAMAGED)),
        StoreError::Database(sqlx::Error::PoolTimedOut) => {
            Some(("timed out waiting for the database".to_owned(), BUSY))
        }
        _ => None,
    }
}
