//! Secrets confab makes for itself on first start and keeps in `data_dir`, so a new user
//! needs to configure nothing and restarts keep tokens valid.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

const JWT_SECRET_FILE: &str = "jwt_secret";
const ADMIN_HASH_FILE: &str = "admin_token.argon2";

/// Where a new admin token is handed over when there is no terminal to show it on.
pub const FIRST_ADMIN_TOKEN_FILE: &str = "admin_token.first";

/// Puts `contents` at `path`, readable by the owner only, unless `path` exists. The
/// file appears whole or not at all: it is written and synced under a temporary name,
/// then hard-linked into place, which fails rather than overwrite. So of two processes
/// starting together on one `data_dir` exactly one wins, and neither can read a secret
/// file between its creation and its write.
fn create_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("secret");
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", random_hex(8)));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    linked
}

/// The secret at `path`, or `make`'s, stored there first; `true` when this call stored it.
fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<(String, bool)> {
    if let Ok(existing) = fs::read_to_string(path) {
        return Ok((existing.trim().to_string(), false));
    }
    let fresh = make();
    match create_private(path, &fresh) {
        Ok(()) => Ok((fresh, true)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok((fs::read_to_string(path)?.trim().to_string(), false)),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

/// The configured secret, or the one generated on first start.
pub fn jwt_secret(data_dir: &Path, configured: Option<&str>) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let (secret, _) = read_or_create(&data_dir.join(JWT_SECRET_FILE), || random_hex(64))?;
    anyhow::ensure!(
        secret.len() >= 32,
        "{} is too short; delete it to regenerate",
        data_dir.join(JWT_SECRET_FILE).display()
    );
    Ok(secret.into_bytes())
}

/// How an admin token is checked. Only an argon2 hash of a generated token is kept.
pub enum AdminCredential {
    /// `admin_token` from config: it lives in the config already, so it is kept in memory.
    Configured(String),
    /// The hash file in `data_dir`, read at each use, so `confab admin-token --reset`
    /// takes effect in a running server at once.
    Hashed(PathBuf),
}

impl AdminCredential {
    fn current(&self) -> Option<String> {
        match self {
            Self::Configured(token) => Some(token.clone()),
            Self::Hashed(path) => fs::read_to_string(path).ok().map(|phc| phc.trim().to_string()),
        }
    }

    pub fn verify(&self, candidate: &str) -> bool {
        match (self, self.current()) {
            (Self::Configured(token), _) => {
                use subtle::ConstantTimeEq;
                token.as_bytes().ct_eq(candidate.as_bytes()).into()
            }
            (Self::Hashed(_), Some(phc)) => PasswordHash::new(&phc)
                .map(|hash| Argon2::default().verify_password(candidate.as_bytes(), &hash).is_ok())
                .unwrap_or(false),
            (Self::Hashed(_), None) => false,
        }
    }

    /// Names the token in force without revealing it: admin sessions remember it, and
    /// end when it changes (a reset, or a new `admin_token` in the config).
    pub fn generation(&self) -> String {
        use sha2::{Digest, Sha256};
        let current = self.current().unwrap_or_default();
        hex::encode(&Sha256::digest(format!("confab admin credential\n{current}").as_bytes())[..8])
    }
}

fn new_admin_token() -> (String, String) {
    let token = random_hex(24);
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    let hash = Argon2::default().hash_password(token.as_bytes(), &salt).expect("argon2 hashing").to_string();
    (token, hash)
}

/// Replaces the admin token: a new one is made and only its hash stored, so the old one
/// and every open console session stop working, in running servers too. Returns the new
/// token, for the operator's terminal.
pub fn reset_admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let (token, hash) = new_admin_token();
    let path = data_dir.join(ADMIN_HASH_FILE);
    let staged = data_dir.join(format!(".{ADMIN_HASH_FILE}.{}.tmp", random_hex(8)));
    create_private(&staged, &hash).with_context(|| format!("writing {}", staged.display()))?;
    let replaced = fs::rename(&staged, &path).with_context(|| format!("replacing {}", path.display()));
    if replaced.is_err() {
        let _ = fs::remove_file(&staged);
    }
    replaced?;
    // A token handed over at first start is no longer the one in force.
    let _ = fs::remove_file(data_dir.join(FIRST_ADMIN_TOKEN_FILE));
    Ok(token)
}

/// Hands a new admin token to the operator without putting it in a log: written to
/// `FIRST_ADMIN_TOKEN_FILE` in `data_dir`, readable by the service user only. Returns
/// the file's path.
pub fn hand_over_admin_token(data_dir: &Path, token: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = data_dir.join(FIRST_ADMIN_TOKEN_FILE);
    let _ = fs::remove_file(&path);
    create_private(&path, &format!("{token}\n")).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Returns the credential and, on the very first start, the new token so it can be
/// shown once.
pub fn admin_credential(
    data_dir: &Path,
    configured: Option<&str>,
) -> anyhow::Result<(AdminCredential, Option<String>)> {
    if let Some(token) = configured {
        return Ok((AdminCredential::Configured(token.to_string()), None));
    }
    let mut token = None;
    let path = data_dir.join(ADMIN_HASH_FILE);
    let (_, created) = read_or_create(&path, || {
        let (fresh, hash) = new_admin_token();
        token = Some(fresh);
        hash
    })?;
    // Shown only by the process whose hash was kept: another one starting at the same
    // moment made a token too, but lost the race, and its token opens nothing.
    Ok((AdminCredential::Hashed(path), token.filter(|_| created)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_persist_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = jwt_secret(dir.path(), None).unwrap();
        assert_eq!(first, jwt_secret(dir.path(), None).unwrap());
        assert_eq!(jwt_secret(dir.path(), Some("configured-secret")).unwrap(), b"configured-secret");
    }

    #[test]
    fn admin_token_is_shown_once_and_only_its_hash_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (cred, shown) = admin_credential(dir.path(), None).unwrap();
        let token = shown.expect("first start shows the token");
        assert!(cred.verify(&token));
        assert!(!cred.verify("wrong"));
        let stored = fs::read_to_string(dir.path().join(ADMIN_HASH_FILE)).unwrap();
        assert!(stored.starts_with("$argon2") && !stored.contains(&token));
        let (again, shown_again) = admin_credential(dir.path(), None).unwrap();
        assert!(shown_again.is_none());
        assert!(again.verify(&token));
    }

    #[test]
    fn of_many_first_starts_at_once_exactly_one_token_is_shown_and_it_is_the_kept_one() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let starts: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        let jwt = jwt_secret(&path, None).unwrap();
                        let (cred, shown) = admin_credential(&path, None).unwrap();
                        (jwt, cred, shown)
                    })
                })
                .collect();
            let results: Vec<_> = starts.into_iter().map(|s| s.join().unwrap()).collect();
            let shown: Vec<&String> = results.iter().filter_map(|(_, _, s)| s.as_ref()).collect();
            assert_eq!(shown.len(), 1, "exactly one process prints a token");
            assert!(results.iter().all(|(_, cred, _)| cred.verify(shown[0])), "and it opens every instance");
            assert!(results.iter().all(|(jwt, _, _)| jwt == &results[0].0 && jwt.len() == 128), "one whole jwt secret");
            let leftovers = fs::read_dir(&path)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"));
            assert_eq!(leftovers.count(), 0, "no temporary files left");
        }
    }

    #[test]
    fn a_reset_replaces_the_token_for_credentials_already_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let (loaded, shown) = admin_credential(dir.path(), None).unwrap();
        let old = shown.unwrap();
        let generation = loaded.generation();
        hand_over_admin_token(dir.path(), &old).unwrap();
        let new = reset_admin_token(dir.path()).unwrap();
        assert_ne!(old, new);
        assert!(!loaded.verify(&old), "the old token stops working in a running server");
        assert!(loaded.verify(&new));
        assert_ne!(loaded.generation(), generation, "so sessions opened before end");
        assert!(!dir.path().join(FIRST_ADMIN_TOKEN_FILE).exists(), "the stale hand-over file is gone");
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
