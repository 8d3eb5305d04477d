//! The PostgreSQL pool and the schema migrations (`dispatch/migrations`, embedded at build time).

use crate::config::DatabaseConfig;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// Why the database could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database URL configured; set database.url_file")]
    NoUrl,
    #[error("cannot connect to PostgreSQL (check database.url_file and that the server runs): {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Opens the pool described by `config`.
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, DbError> {
    let url = config.url.as_ref().ok_or(DbError::NoUrl)?;
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
        .connect(url.expose())
        .await
        .map_err(DbError::Connect)
}

/// Brings the schema up to date; safe to run at every start and from several replicas.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}
