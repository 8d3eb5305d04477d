//! The first admin. There are no default accounts: when the users table is empty, `admin` is created
//! with the password from `admin_password_file`, or a random one that the caller prints once.

use super::password;
use crate::config::Config;
use sqlx::PgPool;
use uuid::Uuid;

/// Why the first admin could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot read admin_password_file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("admin_password_file {path}: the password {message}")]
    Weak { path: String, message: String },
    #[error("cannot create the first admin: {0}")]
    Db(#[from] sqlx::Error),
}

/// What [`ensure_admin`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Users exist already; nothing was done.
    Existing,
    /// `admin` was created with the password from the configured file.
    FromFile,
    /// `admin` was created with this random password, to be shown once.
    Random(String),
}

/// Creates `admin` (role admin, district scope) if there is no user at all. Safe against a second
/// replica starting at the same moment: only one insert wins.
pub async fn ensure_admin(pool: &PgPool, config: &Config) -> Result<Outcome, BootstrapError> {
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(pool)
        .await?;
    if any {
        return Ok(Outcome::Existing);
    }
    let (secret, outcome) = match &config.admin_password_file {
        Some(path) => {
            let shown = path.display().to_string();
            let s = bl_service::secret::Secret::from_file(path).map_err(|source| {
                BootstrapError::File {
                    path: shown.clone(),
                    source,
                }
            })?;
            password::check_new(&config.password, s.expose()).map_err(|message| {
                BootstrapError::Weak {
                    path: shown,
                    message,
                }
            })?;
            (s.expose().to_owned(), Outcome::FromFile)
        }
        None => {
            let p = password::random_password();
            (p.clone(), Outcome::Random(p))
        }
    };
    let params = config.password.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&params, &secret))
        .await
        .expect("password hashing does not panic");
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, display_name, role, scope_towns, password_hash) \
         SELECT $1, 'admin', '系统管理员', 'admin', NULL, $2 WHERE NOT EXISTS (SELECT 1 FROM users) \
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(hash)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(if inserted == 1 {
        outcome
    } else {
        Outcome::Existing
    })
}
