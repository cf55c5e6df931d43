//! `confab backup FILE` and `confab restore FILE` for the embedded store: one tar file
//! with a consistent SQLite snapshot taken while the server keeps serving, the stored
//! images, and the secrets that keep tokens valid. (A MongoDB store is backed up with
//! `mongodump`; see the README.)

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use r2d2_sqlite::rusqlite::{Connection, OpenFlags};

const MANIFEST: &str = "CONFAB-BACKUP";
const FORMAT: &str = "confab backup 1";
const DATABASE: &str = "confab.db";
const MEDIA: &str = "media";
/// Without these, every token issued before the backup would be refused after a restore.
const SECRETS: [&str; 2] = ["jwt_secret", "admin_token.argon2"];

/// What a backup or a restore holds, for the operator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub users: u64,
    pub chats: u64,
    pub messages: u64,
    pub media_files: u64,
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} chats, {} messages, {} media files, {:.1} MB",
            self.users,
            self.chats,
            self.messages,
            self.media_files,
            self.bytes as f64 / 1e6
        )
    }
}

fn counts(db: &Path) -> anyhow::Result<Summary> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |table: &str| -> anyhow::Result<u64> {
        Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))? as u64)
    };
    Ok(Summary { users: count("users")?, chats: count("chats")?, messages: count("messages")?, ..Summary::default() })
}

/// A scratch directory, removed however the backup ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A file next to `path` that is renamed onto it once complete, so `path` is either
/// absent or whole.
fn staging_name(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("backup");
    path.with_file_name(format!(".{name}.partial"))
}

fn create_private(path: &Path) -> anyhow::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).with_context(|| format!("creating {}", path.display()))
}

/// Writes a backup of `data_dir` to `file`. Safe while a server is using `data_dir`:
/// the database is copied in one read transaction (`VACUUM INTO`), so the copy is the
/// state at one instant, and writers are not held up. Images are copied afterwards, so
/// every image a copied message names is there (stored images are never changed).
pub fn create(data_dir: &Path, file: &Path) -> anyhow::Result<Summary> {
    let db = data_dir.join(DATABASE);
    ensure!(db.exists(), "no SQLite store at {} (is data_dir right?)", db.display());
    // Beside the database, so the copy needs no space on another filesystem.
    let scratch = Scratch(data_dir.join(format!(".confab-backup-{}", std::process::id())));
    fs::create_dir_all(&scratch.0).with_context(|| format!("creating {}", scratch.0.display()))?;
    let copy = scratch.0.join(DATABASE);
    let _ = fs::remove_file(&copy);
    {
        let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()]).context("copying the database")?;
    }
    let mut summary = counts(&copy)?;

    let staged = staging_name(file);
    let written = (|| -> anyhow::Result<()> {
        let mut archive = tar::Builder::new(BufWriter::new(create_private(&staged)?));
        archive.mode(tar::HeaderMode::Deterministic);
        append_bytes(&mut archive, MANIFEST, format!("{FORMAT}\n").as_bytes())?;
        archive.append_path_with_name(&copy, DATABASE)?;
        for secret in SECRETS {
            let path = data_dir.join(secret);
            if path.exists() {
                archive.append_path_with_name(&path, secret)?;
            }
        }
        summary.media_files = append_media(&mut archive, &data_dir.join(MEDIA), Path::new(MEDIA))?;
        let file = archive.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&staged);
        return Err(e.context(format!("writing {}", staged.display())));
    }
    fs::rename(&staged, file).with_context(|| format!("moving the backup to {}", file.display()))?;
    summary.bytes = fs::metadata(file)?.len();
    Ok(summary)
}

fn append_bytes<W: Write>(archive: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    archive.append_data(&mut header, name, bytes)?;
    Ok(())
}

/// Stored images under `dir`, skipping uploads still being written (`.partial`).
fn append_media<W: Write>(archive: &mut tar::Builder<W>, dir: &Path, name: &Path) -> anyhow::Result<u64> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(0) };
    let mut count = 0;
    for entry in entries {
        let entry = entry?;
        let (path, kind) = (entry.path(), entry.file_type()?);
        let entry_name = name.join(entry.file_name());
        if kind.is_dir() {
            count += append_media(archive, &path, &entry_name)?;
        } else if kind.is_file() && path.extension().is_none_or(|e| e != "partial") {
            match File::open(&path) {
                Ok(mut file) => archive.append_file(&entry_name, &mut file)?,
                // Deleted since it was listed (an upload whose message failed).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            }
            count += 1;
        }
    }
    Ok(count)
}

/// What already in `data_dir` a restore would overwrite.
fn in_the_way(data_dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::iter::once(DATABASE)
        .chain(SECRETS)
        .filter(|name| data_dir.join(name).exists())
        .map(str::to_string)
        .collect();
    if fs::read_dir(data_dir.join(MEDIA)).is_ok_and(|mut d| d.next().is_some()) {
        found.push(format!("{MEDIA}/"));
    }
    found
}

/// Only the names a backup holds, relative and plain: an archive cannot write elsewhere.
fn allowed(name: &Path) -> bool {
    let plain = name.components().all(|c| matches!(c, Component::Normal(_)));
    let text = name.to_string_lossy();
    plain && (text == DATABASE || SECRETS.contains(&text.as_ref()) || name.starts_with(MEDIA))
}

/// Unpacks a backup into `data_dir`, which must hold no store, secrets or media yet.
pub fn restore(file: &Path, data_dir: &Path) -> anyhow::Result<Summary> {
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let existing = in_the_way(data_dir);
    if !existing.is_empty() {
        bail!(
            "{} already holds {}: restore into an empty data directory (stop confab, move these away, then retry)",
            data_dir.display(),
            existing.join(", ")
        );
    }
    let reader = BufReader::new(File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive.entries()?;
    let mut manifest = String::new();
    match entries.next() {
        Some(Ok(mut first)) if first.path()?.as_ref() == Path::new(MANIFEST) => {
            first.by_ref().take(256).read_to_string(&mut manifest)?;
        }
        _ => bail!("{} is not a confab backup", file.display()),
    }
    ensure!(manifest.trim() == FORMAT, "{} is a backup in a format this confab does not know", file.display());
    let mut media_files = 0;
    for entry in entries {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        ensure!(allowed(&name), "{} holds an unexpected entry {}", file.display(), name.display());
        if entry.header().entry_type().is_file() && name.starts_with(MEDIA) {
            media_files += 1;
        }
        entry.unpack_in(data_dir).with_context(|| format!("unpacking {}", name.display()))?;
    }
    let db = data_dir.join(DATABASE);
    ensure!(db.exists(), "{} holds no database", file.display());
    let check: String = Connection::open(&db)?.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(check == "ok", "the restored database fails its integrity check: {check}");
    let mut summary = counts(&db)?;
    summary.media_files = media_files;
    summary.bytes = fs::metadata(file)?.len();
    Ok(summary)
}
