//! Batch housekeeping the batches screen offers besides the state machine: duplicating a
//! batch (same template, groups and variables, as a new draft) and deleting a draft.

use super::{Batch, DbError, DbResult, NewBatch, Store, TenantScope, like_pattern, on_pool};

impl Store {
    /// Batches matching `search` (name or status), as `list_batches` filters them.
    pub async fn count_batches_matching(
        &self,
        scope: TenantScope,
        search: Option<&str>,
    ) -> DbResult<i64> {
        let pattern = like_pattern(search);
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM batches_batch b WHERE b.tenant_id = $1
                 AND ($2 IS NULL OR LOWER(b.name) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(b.status, 'draft')) LIKE $2 ESCAPE '\\')",
            )
            .bind(scope.tenant_id())
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }

    /// A new draft with the template, groups and variables of batch `id`, named `name`.
    pub async fn duplicate_batch(
        &self,
        scope: TenantScope,
        id: i32,
        name: &str,
    ) -> DbResult<Batch> {
        let of = self.get_batch(scope, id).await?;
        let groups = self.batch_groups(scope, id).await?;
        self.create_batch(
            scope,
            &NewBatch {
                name: name.to_string(),
                template_id: of.template_id,
                group_ids: groups.iter().map(|g| g.group_id).collect(),
                variables: of.variables.map(|j| j.0),
                scheduled_at: None,
            },
        )
        .await
    }

    /// Deletes a draft batch with its groups and execution log. Anything but a draft is
    /// refused: a batch that ever ran keeps its history.
    pub async fn delete_draft_batch(&self, scope: TenantScope, id: i32) -> DbResult<()> {
        let batch = self.get_batch(scope, id).await?;
        if batch.status != "draft" {
            return Err(DbError::Invalid(format!(
                "batch #{id} is {}: only drafts can be deleted (cancel it instead)",
                batch.status
            )));
        }
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            // Guarded by status, so a batch started meanwhile is left alone.
            let n = sqlx::query(
                "UPDATE batches_batch SET status = 'draft' WHERE id = $1 AND tenant_id = $2
                 AND COALESCE(status, 'draft') = 'draft'",
            )
            .bind(id)
            .bind(scope.tenant_id())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(DbError::Conflict(format!(
                    "batch #{id} changed status meanwhile; reload and try again"
                )));
            }
            for sql in [
                "DELETE FROM batches_batchgroup WHERE batch_id = $1",
                "DELETE FROM logs_batchexecutionlog WHERE batch_id = $1",
                "DELETE FROM logs_emaillog WHERE batch_id = $1",
                "DELETE FROM batches_batch WHERE id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
