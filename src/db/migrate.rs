//! Schema migrations for both backends. Our own small migrator (not sqlx's) so that its
//! bookkeeping table follows the `recalliq_` prefix rule and every step can be written to
//! be a no-op on a database that the web app created.

use super::{DbResult, Pool, Store, now};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "seed_schema",
        sqlite: include_str!("../../migrations/sqlite/0001_seed_schema.sql"),
        postgres: include_str!("../../migrations/postgres/0001_seed_schema.sql"),
    },
    Migration {
        version: 2,
        name: "engine_columns",
        sqlite: include_str!("../../migrations/sqlite/0002_engine_columns.sql"),
        postgres: include_str!("../../migrations/postgres/0002_engine_columns.sql"),
    },
    Migration {
        version: 3,
        name: "suppression",
        sqlite: include_str!("../../migrations/sqlite/0003_suppression.sql"),
        postgres: include_str!("../../migrations/postgres/0003_suppression.sql"),
    },
    Migration {
        version: 4,
        name: "engine_queue",
        sqlite: include_str!("../../migrations/sqlite/0004_engine_queue.sql"),
        postgres: include_str!("../../migrations/postgres/0004_engine_queue.sql"),
    },
    Migration {
        version: 5,
        name: "batch_notify",
        sqlite: include_str!("../../migrations/sqlite/0005_batch_notify.sql"),
        postgres: include_str!("../../migrations/postgres/0005_batch_notify.sql"),
    },
    Migration {
        version: 6,
        name: "auditlog",
        sqlite: include_str!("../../migrations/sqlite/0006_auditlog.sql"),
        postgres: include_str!("../../migrations/postgres/0006_auditlog.sql"),
    },
    Migration {
        version: 7,
        name: "bounces",
        sqlite: include_str!("../../migrations/sqlite/0007_bounces.sql"),
        postgres: include_str!("../../migrations/postgres/0007_bounces.sql"),
    },
    Migration {
        version: 8,
        name: "retention",
        sqlite: include_str!("../../migrations/sqlite/0008_retention.sql"),
        postgres: include_str!("../../migrations/postgres/0008_retention.sql"),
    },
    Migration {
        version: 9,
        name: "log_viewer",
        sqlite: include_str!("../../migrations/sqlite/0009_log_viewer.sql"),
        postgres: include_str!("../../migrations/postgres/0009_log_viewer.sql"),
    },
    Migration {
        version: 10,
        name: "dkim",
        sqlite: include_str!("../../migrations/sqlite/0010_dkim.sql"),
        postgres: include_str!("../../migrations/postgres/0010_dkim.sql"),
    },
    Migration {
        version: 11,
        name: "bounce_mailbox",
        sqlite: include_str!("../../migrations/sqlite/0011_bounce_mailbox.sql"),
        postgres: include_str!("../../migrations/postgres/0011_bounce_mailbox.sql"),
    },
    Migration {
        version: 12,
        name: "email_attempts",
        sqlite: include_str!("../../migrations/sqlite/0012_email_attempts.sql"),
        postgres: include_str!("../../migrations/postgres/0012_email_attempts.sql"),
    },
    Migration {
        version: 13,
        name: "engine_indexes",
        sqlite: include_str!("../../migrations/sqlite/0013_engine_indexes.sql"),
        postgres: include_str!("../../migrations/postgres/0013_engine_indexes.sql"),
    },
];

/// The newest schema version this binary knows.
pub const LATEST_VERSION: i64 = 13;

const CREATE_TRACKING: &str = "CREATE TABLE IF NOT EXISTS recalliq_schema_migrations (
    version BIGINT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    applied_at TIMESTAMP NOT NULL
)";

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<i64>,
    /// Newest version now in the database.
    pub current: i64,
}

// Arbitrary constant shared by every recalliq process: serialises concurrent migrations.
const PG_MIGRATION_LOCK: i64 = 0x5245_4341_4c4c_4951; // "RECALLIQ"

impl Store {
    /// Brings the schema to `LATEST_VERSION`. Idempotent; safe to run from several processes
    /// at once on Postgres (an advisory lock serialises them).
    pub async fn migrate(&self) -> DbResult<MigrationReport> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query(CREATE_TRACKING).execute(&mut *conn).await?;
                let mut applied = Vec::new();
                for m in MIGRATIONS {
                    let done: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM recalliq_schema_migrations WHERE version = $1",
                    )
                    .bind(m.version)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if done.is_some() {
                        continue;
                    }
                    // BEGIN IMMEDIATE takes the write lock up front, so two processes
                    // migrating at once wait for each other instead of failing midway.
                    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                    let step = async {
                        let again: Option<i64> = sqlx::query_scalar(
                            "SELECT version FROM recalliq_schema_migrations WHERE version = $1",
                        )
                        .bind(m.version)
                        .fetch_optional(&mut *conn)
                        .await?;
                        if again.is_none() {
                            sqlx::raw_sql(m.sqlite).execute(&mut *conn).await?;
                            record(&mut *conn, m).await?;
                        }
                        Ok::<bool, sqlx::Error>(again.is_none())
                    }
                    .await;
                    match step {
                        Ok(ran) => {
                            sqlx::query("COMMIT").execute(&mut *conn).await?;
                            if ran {
                                applied.push(m.version);
                            }
                        }
                        Err(e) => {
                            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                            return Err(e.into());
                        }
                    }
                }
                Ok(MigrationReport {
                    applied,
                    current: self.schema_version().await?,
                })
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await?;
                let result = async {
                    sqlx::query(CREATE_TRACKING).execute(&mut *conn).await?;
                    let mut applied = Vec::new();
                    for m in MIGRATIONS {
                        let done: Option<i64> = sqlx::query_scalar(
                            "SELECT version FROM recalliq_schema_migrations WHERE version = $1",
                        )
                        .bind(m.version)
                        .fetch_optional(&mut *conn)
                        .await?;
                        if done.is_some() {
                            continue;
                        }
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        sqlx::raw_sql(m.postgres).execute(&mut *tx).await?;
                        record(&mut *tx, m).await?;
                        tx.commit().await?;
                        applied.push(m.version);
                    }
                    Ok::<_, sqlx::Error>(applied)
                }
                .await;
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await;
                let applied = result?;
                Ok(MigrationReport {
                    applied,
                    current: self.schema_version().await?,
                })
            }
        }
    }

    /// Newest applied migration, 0 when the database has never been migrated by recalliq.
    pub async fn schema_version(&self) -> DbResult<i64> {
        let exists = self.table_exists("recalliq_schema_migrations").await?;
        if !exists {
            return Ok(0);
        }
        let v: Option<i64> = super::on_pool!(self, p => {
            sqlx::query_scalar("SELECT MAX(version) FROM recalliq_schema_migrations")
                .fetch_one(p)
                .await?
        });
        Ok(v.unwrap_or(0))
    }

    /// Whether a table of that name exists (in the current schema on Postgres).
    pub async fn table_exists(&self, table: &str) -> DbResult<bool> {
        let n: i64 = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                )
                .bind(table)
                .fetch_one(p)
                .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_name = $1",
                )
                .bind(table)
                .fetch_one(p)
                .await?
            }
        };
        Ok(n > 0)
    }

    /// Fails with a clear instruction when the schema is older than this binary.
    pub async fn require_current_schema(&self) -> DbResult<()> {
        let v = self.schema_version().await?;
        if v < LATEST_VERSION {
            return Err(super::DbError::Invalid(format!(
                "the database schema is at version {v}, this recalliq needs {LATEST_VERSION}: run `recalliq migrate`"
            )));
        }
        Ok(())
    }
}

async fn record<'e, E>(conn: E, m: &Migration) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e>,
    i64: sqlx::Encode<'e, E::Database> + sqlx::Type<E::Database>,
    &'e str: sqlx::Encode<'e, E::Database> + sqlx::Type<E::Database>,
    chrono::NaiveDateTime: sqlx::Encode<'e, E::Database> + sqlx::Type<E::Database>,
    for<'a> <E::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<E::Database>,
{
    sqlx::query(
        "INSERT INTO recalliq_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
    )
    .bind(m.version)
    .bind(m.name)
    .bind(now())
    .execute(conn)
    .await?;
    Ok(())
}
