//! `dispatch audit-verify`: reads the whole chain in `seq` order, in batches, and checks it with
//! [`chain::Check`]. A chain only shows changes up to its last row: to notice rows cut off at the
//! end, keep the reported last hash somewhere else and compare.

use super::chain::{self, Break};
use super::store;
use sqlx::PgPool;

/// Rows read per query.
const BATCH: i64 = 1000;

/// What the walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every row checked: how many, and the last row's hash (64 zeros when empty).
    Intact { count: i64, last_hash: String },
    /// The first broken row, and how many rows before it were sound.
    Broken { at: Break, sound: i64 },
}

impl Outcome {
    /// The line `audit-verify` prints.
    pub fn report(&self) -> String {
        match self {
            Outcome::Intact { count, last_hash } => {
                format!("audit chain OK: {count} entries, last hash {last_hash}")
            }
            Outcome::Broken { at, sound } => format!(
                "audit chain BROKEN at seq {}: {} ({sound} entries before it are intact)",
                at.seq, at.reason
            ),
        }
    }
}

/// Walks the stored chain from its first row.
pub async fn run(pool: &PgPool) -> Result<Outcome, sqlx::Error> {
    let mut check = chain::Check::default();
    let mut after = 0;
    loop {
        let rows = store::batch(pool, after, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in &rows {
            if let Err(at) = check.push(row) {
                return Ok(Outcome::Broken {
                    at,
                    sound: check.count(),
                });
            }
        }
    }
    Ok(Outcome::Intact {
        count: check.count(),
        last_hash: check.last_hash().to_owned(),
    })
}
