//! Who may use the web page and the REST API.
//!
//! No default password: on first start (no admin password yet) the daemon logs a one-time
//! setup code; `POST /api/setup {code, password}` spends it to set the admin password
//! (Argon2id). `POST /api/login {password}` opens a session: an HttpOnly, Secure,
//! SameSite=Strict cookie plus a CSRF token that every state-changing request must echo in
//! `X-CSRF-Token`. Machines use API tokens (`Authorization: Bearer …`), which need no CSRF
//! token because a browser never sends them on its own. Failed logins are limited per client
//! address. Stored on disk (`data_dir/web/auth.json`, mode 0600): the password hash and the
//! SHA-256 of each token, never a token itself.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "wp_session";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed per client address within [`FAIL_WINDOW`].
const MAX_FAILURES: usize = 5;
const FAIL_WINDOW: Duration = Duration::from_secs(300);
pub const MIN_PASSWORD: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("the admin password is already set")]
    AlreadySetUp,
    #[error("wrong setup code")]
    BadCode,
    #[error("the password must be at least {MIN_PASSWORD} characters")]
    WeakPassword,
    #[error("wrong password")]
    BadPassword,
    #[error("an account named \"{0}\" exists already")]
    UserExists(String),
    #[error("account names are 1 to 64 letters, digits, '-', '_' or '.'")]
    BadUserName,
    #[error("too many failed logins from this address; wait {0} s")]
    RateLimited(u64),
    #[error("not set up yet: use the setup code from the log at /setup")]
    NotSetUp,
    #[error("cannot save {path}: {message}")]
    Store { path: PathBuf, message: String },
    /// The store exists but cannot be read: sign-in is off, nothing is reset.
    #[error("{0}")]
    Damaged(String),
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    password_hash: Option<String>,
    #[serde(default)]
    tokens: Vec<StoredToken>,
    /// Named accounts beside `admin` (the console's viewers and further admins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    users: Vec<StoredUser>,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredToken {
    name: String,
    sha256: String,
    /// Tokens made before roles existed are admin tokens.
    #[serde(default)]
    role: Role,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredUser {
    name: String,
    role: Role,
    password_hash: String,
}

/// What a signed-in principal may do: `admin` changes state (config, commands, keys,
/// accounts), `viewer` only reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Admin,
    Viewer,
}

/// The account the setup code creates (`login` without a name signs in as it).
pub const ADMIN_USER: &str = "admin";

struct Session {
    csrf: String,
    expires: Instant,
    user: String,
    role: Role,
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// A browser session; its CSRF token must accompany state changes.
    Session {
        csrf: String,
        user: String,
        role: Role,
    },
    /// An API token (by its name).
    Token { name: String, role: Role },
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::Session { role, .. } | Principal::Token { role, .. } => *role,
        }
    }

    /// The account or token name, for audit logs.
    pub fn name(&self) -> &str {
        match self {
            Principal::Session { user, .. } => user,
            Principal::Token { name, .. } => name,
        }
    }
}

pub struct Auth {
    path: PathBuf,
    stored: Mutex<Stored>,
    /// SHA-256 of the one-time setup code, while the password is unset.
    setup_code: Mutex<Option<[u8; 32]>>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Vec<Instant>>>,
    /// Why `auth.json` could not be read; while set, no one signs in and nothing is saved.
    damaged: Option<String>,
}

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill(&mut b[..]);
    hex::encode(b)
}

fn sha(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// Constant-time equality for secrets (the length is not secret).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

impl Auth {
    /// Loads `dir/auth.json`; without a password yet, returns the one-time setup code to log.
    /// A file that exists but cannot be read is never taken for "not set up" (that would
    /// un-claim the device and forget every token): sign-in stays off, with the reason, until
    /// an operator fixes or restores the file.
    pub fn open(dir: &Path) -> Result<(Self, Option<String>), AuthError> {
        let path = dir.join("auth.json");
        let read = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<Stored>(&b).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
            Err(e) => Err(e.to_string()),
        };
        let (stored, damaged) = match read {
            Ok(s) => (s, None),
            Err(e) => {
                let why = format!(
                    "{} cannot be read ({e}). It holds the admin password and the API tokens, so sign-in is off until it is fixed or restored from a backup of data_dir; deleting it sets the device up afresh (forgets the password and every token)",
                    path.display()
                );
                tracing::error!("web: {why}");
                (Stored::default(), Some(why))
            }
        };
        let code = (stored.password_hash.is_none() && damaged.is_none()).then(|| {
            // 12 characters from an unambiguous alphabet, grouped for reading aloud.
            const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
            let mut rng = rand::rng();
            let raw: String = (0..12)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
        });
        let auth = Self {
            path,
            setup_code: Mutex::new(code.as_deref().map(sha)),
            stored: Mutex::new(stored),
            sessions: Mutex::default(),
            failures: Mutex::default(),
            damaged,
        };
        Ok((auth, code))
    }

    pub fn is_set_up(&self) -> bool {
        self.damaged.is_some() || lock(&self.stored).password_hash.is_some()
    }

    fn refuse_if_damaged(&self) -> Result<(), AuthError> {
        match &self.damaged {
            Some(why) => Err(AuthError::Damaged(why.clone())),
            None => Ok(()),
        }
    }

    fn save(&self, stored: &Stored) -> Result<(), AuthError> {
        self.refuse_if_damaged()?;
        let err = |message: String| AuthError::Store {
            path: self.path.clone(),
            message,
        };
        let body = serde_json::to_vec_pretty(stored).map_err(|e| err(e.to_string()))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(e.to_string()))?;
        std::fs::write(tmp.path(), body).map_err(|e| err(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
        tmp.persist(&self.path).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// Spends the setup code to set the admin password.
    pub fn setup(&self, code: &str, password: &str) -> Result<(), AuthError> {
        self.refuse_if_damaged()?;
        let mut slot = lock(&self.setup_code);
        let Some(want) = *slot else {
            return Err(AuthError::AlreadySetUp);
        };
        if !same(&sha(code.trim()), &want) {
            return Err(AuthError::BadCode);
        }
        if password.chars().count() < MIN_PASSWORD {
            return Err(AuthError::WeakPassword);
        }
        let hash = hash_password(password)?;
        let mut stored = lock(&self.stored);
        stored.password_hash = Some(hash);
        self.save(&stored)?;
        *slot = None;
        Ok(())
    }

    /// Checks the password (rate-limited per address); returns the new session id and its
    /// CSRF token.
    pub fn login(&self, from: IpAddr, password: &str) -> Result<(String, String), AuthError> {
        self.login_as(from, ADMIN_USER, password)
    }

    /// [`Auth::login`] for a named account (`admin` or one made by [`Auth::add_user`]). A
    /// wrong name and a wrong password fail alike, and count alike against the limit.
    pub fn login_as(
        &self,
        from: IpAddr,
        user: &str,
        password: &str,
    ) -> Result<(String, String), AuthError> {
        self.refuse_if_damaged()?;
        // The attempt counts as a failure from before the check until it proves good, in the
        // same lock as the limit: parallel guesses cannot all pass the limit first.
        let attempt = Instant::now();
        {
            let mut f = lock(&self.failures);
            let list = f.entry(from).or_default();
            list.retain(|t| t.elapsed() < FAIL_WINDOW);
            if list.len() >= MAX_FAILURES {
                let wait = FAIL_WINDOW.saturating_sub(list[0].elapsed()).as_secs() + 1;
                return Err(AuthError::RateLimited(wait));
            }
            list.push(attempt);
        }
        let forgive = || {
            if let Some(list) = lock(&self.failures).get_mut(&from) {
                if let Some(i) = list.iter().position(|t| *t == attempt) {
                    list.remove(i);
                }
            }
        };
        let (hash, role) = {
            let stored = lock(&self.stored);
            let Some(admin) = stored.password_hash.clone() else {
                forgive();
                return Err(AuthError::NotSetUp);
            };
            if user == ADMIN_USER {
                (admin, Role::Admin)
            } else {
                match stored.users.iter().find(|u| u.name == user) {
                    Some(u) => (u.password_hash.clone(), u.role),
                    // Still hashed below (against the admin's hash, never matching this
                    // name), so a wrong name takes as long as a wrong password.
                    None => (admin, Role::Viewer),
                }
            }
        };
        let known = user == ADMIN_USER || lock(&self.stored).users.iter().any(|u| u.name == user);
        let ok = PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        if !ok || !known {
            return Err(AuthError::BadPassword);
        }
        forgive();
        let (id, csrf) = (random_token(32), random_token(32));
        lock(&self.sessions).insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: Instant::now() + SESSION_TTL,
                user: user.to_string(),
                role,
            },
        );
        Ok((id, csrf))
    }

    pub fn logout(&self, session: &str) {
        lock(&self.sessions).remove(session);
    }

    pub fn session(&self, id: &str) -> Option<Principal> {
        let mut s = lock(&self.sessions);
        s.retain(|_, v| v.expires > Instant::now());
        s.get(id).map(|v| Principal::Session {
            csrf: v.csrf.clone(),
            user: v.user.clone(),
            role: v.role,
        })
    }

    /// Makes an admin API token; the token is returned once and only its hash is kept.
    pub fn create_token(&self, name: &str) -> Result<String, AuthError> {
        self.create_token_for(name, Role::Admin)
    }

    /// [`Auth::create_token`] with a role.
    pub fn create_token_for(&self, name: &str, role: Role) -> Result<String, AuthError> {
        let token = format!("wpt_{}", random_token(24));
        let mut stored = lock(&self.stored);
        stored.tokens.push(StoredToken {
            name: name.to_string(),
            sha256: hex::encode(sha(&token)),
            role,
        });
        self.save(&stored)?;
        Ok(token)
    }

    /// Adds a named account (an admin signs others up; there is no self sign-up).
    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<(), AuthError> {
        self.refuse_if_damaged()?;
        let valid = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(AuthError::BadUserName);
        }
        if password.chars().count() < MIN_PASSWORD {
            return Err(AuthError::WeakPassword);
        }
        let hash = hash_password(password)?;
        let mut stored = lock(&self.stored);
        if name == ADMIN_USER || stored.users.iter().any(|u| u.name == name) {
            return Err(AuthError::UserExists(name.to_string()));
        }
        stored.users.push(StoredUser {
            name: name.to_string(),
            role,
            password_hash: hash,
        });
        self.save(&stored)
    }

    /// The accounts (name and role; never a hash), `admin` first.
    pub fn users(&self) -> Vec<(String, Role)> {
        let stored = lock(&self.stored);
        std::iter::once((ADMIN_USER.to_string(), Role::Admin))
            .chain(stored.users.iter().map(|u| (u.name.clone(), u.role)))
            .collect()
    }

    pub fn token(&self, token: &str) -> Option<Principal> {
        let want = hex::encode(sha(token));
        lock(&self.stored)
            .tokens
            .iter()
            .find(|t| same(t.sha256.as_bytes(), want.as_bytes()))
            .map(|t| Principal::Token {
                name: t.name.clone(),
                role: t.role,
            })
    }
}

fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let err = |e: argon2::password_hash::Error| AuthError::Store {
        path: PathBuf::from("auth.json"),
        message: e.to_string(),
    };
    let salt = SaltString::encode_b64(&salt).map_err(err)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(err)?
        .to_string())
}

fn lock<T>(m: &Mutex<T>) -> parking_lot::MutexGuard<'_, T> {
    m.lock()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_once_then_login_with_limits_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, code) = Auth::open(dir.path()).unwrap();
        let code = code.expect("a setup code on first start");
        assert_eq!(
            auth.setup("WRONG-CODE-0000", "a long enough password"),
            Err(AuthError::BadCode)
        );
        assert_eq!(auth.setup(&code, "short"), Err(AuthError::WeakPassword));
        auth.setup(&code, "a long enough password").unwrap();
        assert_eq!(
            auth.setup(&code, "another long password"),
            Err(AuthError::AlreadySetUp)
        );
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (sid, csrf) = auth.login(ip, "a long enough password").unwrap();
        assert_eq!(
            auth.session(&sid),
            Some(Principal::Session {
                csrf,
                user: ADMIN_USER.into(),
                role: Role::Admin
            })
        );
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.login(ip, "guess"), Err(AuthError::BadPassword));
        }
        assert!(matches!(
            auth.login(ip, "a long enough password"),
            Err(AuthError::RateLimited(_))
        ));
        // Another address is not punished for this one.
        assert!(auth
            .login("10.0.0.9".parse().unwrap(), "a long enough password")
            .is_ok());
        auth.logout(&sid);
        assert_eq!(auth.session(&sid), None);
        let token = auth.create_token("fleet").unwrap();
        assert_eq!(
            auth.token(&token),
            Some(Principal::Token {
                name: "fleet".into(),
                role: Role::Admin
            })
        );
        assert_eq!(auth.token("wpt_nope"), None);
        // Reopened: set up, no code, token still valid, and the file holds no token.
        let (again, code) = Auth::open(dir.path()).unwrap();
        assert!(again.is_set_up() && code.is_none());
        assert!(again.token(&token).is_some());
        let on_disk = std::fs::read_to_string(dir.path().join("auth.json")).unwrap();
        assert!(!on_disk.contains(&token) && !on_disk.contains("a long enough password"));
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    #[test]
    fn forty_parallel_wrong_passwords_from_one_address_get_at_most_five_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, code) = Auth::open(dir.path()).unwrap();
        auth.setup(&code.unwrap(), "a long enough password")
            .unwrap();
        let auth = std::sync::Arc::new(auth);
        let start = std::sync::Arc::new(std::sync::Barrier::new(40));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let answers: Vec<AuthError> = (0..40)
            .map(|_| {
                let (auth, start) = (auth.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    auth.login(ip, "not the password").unwrap_err()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let checked = answers
            .iter()
            .filter(|e| **e == AuthError::BadPassword)
            .count();
        let limited = answers
            .iter()
            .filter(|e| matches!(e, AuthError::RateLimited(_)))
            .count();
        assert_eq!((checked, limited), (MAX_FAILURES, 40 - MAX_FAILURES));
    }

    #[test]
    fn a_corrupt_auth_file_turns_sign_in_off_naming_the_file_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, code) = Auth::open(dir.path()).unwrap();
        auth.setup(&code.unwrap(), "a long enough password")
            .unwrap();
        let token = auth.create_token("ci").unwrap();
        let path = dir.path().join("auth.json");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&path, &bytes).unwrap();

        let (auth, code) = Auth::open(dir.path()).unwrap();
        assert_eq!(code, None, "no new setup code: the device stays claimed");
        assert!(auth.is_set_up());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let Err(AuthError::Damaged(why)) = auth.login(ip, "a long enough password") else {
            panic!("login must be refused while auth.json is damaged");
        };
        assert!(why.contains(&path.display().to_string()), "{why}");
        assert!(why.contains("cannot be read"), "{why}");
        assert!(matches!(
            auth.setup("ANY-CODE-0000", "a long enough password"),
            Err(AuthError::Damaged(_))
        ));
        assert_eq!(auth.token(&token), None);
        assert!(auth.create_token("other").is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the file is left as it was"
        );
    }

    #[test]
    fn named_accounts_sign_in_with_their_role_and_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, code) = Auth::open(dir.path()).unwrap();
        auth.setup(&code.unwrap(), "correct horse battery").unwrap();
        auth.add_user("ops", Role::Viewer, "viewer password 1")
            .unwrap();
        assert_eq!(
            auth.add_user("ops", Role::Admin, "another password"),
            Err(AuthError::UserExists("ops".into()))
        );
        assert_eq!(
            auth.add_user(ADMIN_USER, Role::Viewer, "another password"),
            Err(AuthError::UserExists(ADMIN_USER.into()))
        );
        assert_eq!(
            auth.add_user("a b", Role::Viewer, "another password"),
            Err(AuthError::BadUserName)
        );
        assert_eq!(
            auth.add_user("short", Role::Viewer, "short"),
            Err(AuthError::WeakPassword)
        );
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (sid, _) = auth.login_as(ip, "ops", "viewer password 1").unwrap();
        let p = auth.session(&sid).unwrap();
        assert_eq!((p.role(), p.name()), (Role::Viewer, "ops"));
        // The admin's password does not open the viewer's account, nor an unknown one.
        assert_eq!(
            auth.login_as(ip, "ops", "correct horse battery"),
            Err(AuthError::BadPassword)
        );
        assert_eq!(
            auth.login_as(ip, "nobody", "correct horse battery"),
            Err(AuthError::BadPassword)
        );
        let t = auth.create_token_for("dash", Role::Viewer).unwrap();
        assert_eq!(auth.token(&t).unwrap().role(), Role::Viewer);
        // Accounts and roles survive a restart; hashes are never listed.
        drop(auth);
        let (again, code) = Auth::open(dir.path()).unwrap();
        assert!(code.is_none());
        assert_eq!(
            again.users(),
            vec![
                (ADMIN_USER.to_string(), Role::Admin),
                ("ops".to_string(), Role::Viewer)
            ]
        );
        assert_eq!(again.token(&t).unwrap().role(), Role::Viewer);
    }
}
