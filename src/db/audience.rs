//! The recipients a batch would reach, computed read-only with the same rules as
//! materialization (active groups and contacts of the tenant, first contact per address
//! case-insensitively), each flagged when the tenant suppresses it. Used by pre-flight.

use serde_json::Value;
use sqlx::types::Json;

use super::{DbResult, Store, TenantScope, on_pool};

/// One unique recipient of a batch's groups.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AudienceRow {
    pub email: String,
    pub name: Option<String>,
    pub variables: Option<Json<Value>>,
    /// 1 when the address is on the tenant's suppression list.
    pub suppressed: i64,
}

impl Store {
    /// At most `limit` unique recipients of the batch's groups, in contact order. The batch
    /// must belong to `scope`'s tenant (checked first).
    pub async fn batch_audience(
        &self,
        scope: TenantScope,
        batch_id: i32,
        limit: i64,
    ) -> DbResult<Vec<AudienceRow>> {
        self.get_batch(scope, batch_id).await?;
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT r.email, r.name, r.variables,
                    CAST(CASE WHEN EXISTS (SELECT 1 FROM recalliq_suppression s
                        WHERE s.tenant_id = $2 AND LOWER(s.email) = LOWER(r.email))
                    THEN 1 ELSE 0 END AS BIGINT) AS suppressed
                 FROM (
                    SELECT ge.id, ge.email, ge.name, ge.variables,
                        ROW_NUMBER() OVER (PARTITION BY LOWER(ge.email) ORDER BY ge.id) AS rn
                    FROM batches_batchgroup bg
                    JOIN tenants_group g ON g.id = bg.group_id AND g.tenant_id = $2
                        AND COALESCE(g.is_active, TRUE)
                    JOIN tenants_groupemail ge ON ge.group_id = bg.group_id
                        AND COALESCE(ge.is_active, TRUE)
                    WHERE bg.batch_id = $1
                 ) r
                 WHERE r.rn = 1
                 ORDER BY r.id
                 LIMIT $3",
            )
            .bind(batch_id)
            .bind(scope.tenant_id())
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }
}
