//! The tenant's DKIM keys (opened from the SMTP screen, tenant admins and super admins):
//! one row per key of each sender domain (domain, selector, algorithm, active or retired,
//! created), a row for every sender domain without a key, and under the table the DNS
//! records to publish for the selected domain (DKIM TXT, an SPF suggestion, a DMARC
//! starting policy) as zone-file lines ready to copy. Private keys are never shown: the
//! store hands out only the public part and `DkimKey` never prints its ciphertext.
//!
//! The forms (generate, import a PEM file, rotate) only collect and check the input; the
//! app asks for confirmation, then stores the key through `crate::dkim::store_key` (the
//! same code as `recalliq dkim`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use super::Session;
use super::templates::scope;
use crate::db::{DKIM_ACTIVE, DbError, DbResult, DkimKey, SmtpSettings, Store};
use crate::dkim::{self, Algorithm, PrivateKey};
use crate::tui::theme::Theme;
use crate::tui::widgets::form::{Field, Form, required};

/// One row of the table: a key, or a sender domain that has none yet.
#[derive(Debug, Clone, PartialEq)]
pub enum DkimRow {
    Key(DkimKey),
    NoKey(String),
}

impl DkimRow {
    pub fn domain(&self) -> &str {
        match self {
            DkimRow::Key(k) => &k.domain,
            DkimRow::NoKey(d) => d,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DkimKeys {
    /// Keys per domain (newest first within a domain), then domains without a key.
    pub rows: Vec<DkimRow>,
    /// Every domain the tenant may sign for (its own and its sender addresses').
    pub domains: Vec<String>,
    /// The SMTP host (named in the SPF suggestion).
    pub smtp_host: Option<String>,
    pub selected: usize,
    /// A key to select on the next load (the one just stored).
    pub focus_id: Option<i32>,
    pub loaded: bool,
}

impl DkimKeys {
    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let (Ok(scope), Some(tenant)) = (scope(session), &session.tenant) else {
            *self = DkimKeys::default();
            return Ok(());
        };
        let keys = store.list_dkim_keys(scope, None).await?;
        self.domains = dkim::sender_domains(store, &tenant.domain, scope)
            .await
            .map_err(|e| match e {
                dkim::DkimError::Db(e) => e,
                other => DbError::Invalid(other.to_string()),
            })?;
        self.smtp_host = match store.smtp_settings(scope).await? {
            Some(SmtpSettings::Smtp(s)) => Some(s.host),
            _ => None,
        };
        let mut rows: Vec<DkimRow> = keys.into_iter().map(DkimRow::Key).collect();
        for d in &self.domains {
            if !rows.iter().any(|r| r.domain() == d) {
                rows.push(DkimRow::NoKey(d.clone()));
            }
        }
        self.rows = rows;
        if let Some(id) = self.focus_id.take()
            && let Some(i) = self
                .rows
                .iter()
                .position(|r| matches!(r, DkimRow::Key(k) if k.id == id))
        {
            self.selected = i;
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        self.loaded = true;
        Ok(())
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.rows.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last.max(0)) as usize;
    }

    pub fn selected_row(&self) -> Option<&DkimRow> {
        self.rows.get(self.selected)
    }

    /// The domain of the selected row (the tenant's own domain when there are no rows).
    pub fn selected_domain(&self) -> Option<String> {
        self.selected_row()
            .map(|r| r.domain().to_string())
            .or_else(|| self.domains.first().cloned())
    }

    /// The active key of `domain`, if any.
    pub fn active_key(&self, domain: &str) -> Option<&DkimKey> {
        self.rows.iter().find_map(|r| match r {
            DkimRow::Key(k) if k.domain == domain && k.status == DKIM_ACTIVE => Some(k),
            _ => None,
        })
    }

    /// The DNS records of `domain`'s keys (none when it has no key).
    pub fn records(&self, domain: &str) -> Vec<dkim::DnsRecord> {
        let keys: Vec<DkimKey> = self
            .rows
            .iter()
            .filter_map(|r| match r {
                DkimRow::Key(k) if k.domain == domain => Some(k.clone()),
                _ => None,
            })
            .collect();
        dkim::dns_records(&keys, self.smtp_host.as_deref())
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme, tenant: Option<&str>) {
        let Some(tenant) = tenant else {
            frame.render_widget(
                Paragraph::new(
                    "DKIM keys belong to a tenant: pick one on the Tenants screen first.",
                )
                .block(Block::bordered().title(" DKIM keys ").style(theme.base())),
                area,
            );
            return;
        };
        let high = (self.rows.len() as u16 + 3).clamp(4, (area.height / 2).max(4));
        let [top, bottom] =
            Layout::vertical([Constraint::Length(high), Constraint::Fill(1)]).areas(area);
        self.draw_keys(frame, top, theme, tenant);
        self.draw_dns(frame, bottom, theme);
    }

    fn draw_keys(&self, frame: &mut Frame, area: Rect, theme: &Theme, tenant: &str) {
        let block = Block::bordered()
            .title(Span::styled(
                format!(" DKIM keys of {tenant} (private keys are never shown) "),
                theme.accent(),
            ))
            .style(theme.base());
        let rows = self.rows.iter().map(|r| match r {
            DkimRow::Key(k) => {
                let active = k.status == DKIM_ACTIVE;
                let row = Row::new(vec![
                    k.domain.clone(),
                    k.selector.clone(),
                    k.algorithm.clone(),
                    if active { "active" } else { "retired" }.to_string(),
                    k.created_at.format("%Y-%m-%d %H:%M").to_string(),
                ]);
                if active {
                    row
                } else {
                    row.style(theme.muted())
                }
            }
            DkimRow::NoKey(d) => Row::new(vec![
                d.clone(),
                "—".into(),
                "—".into(),
                "no key".into(),
                "g generates".into(),
            ])
            .style(theme.warn()),
        });
        let table = Table::new(
            rows,
            [
                Constraint::Fill(2),
                Constraint::Fill(2),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(16),
            ],
        )
        .header(
            Row::new(vec!["Domain", "Selector", "Algorithm", "Status", "Created"])
                .style(theme.accent()),
        )
        .row_highlight_style(theme.selected())
        .block(block);
        let mut state = TableState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(table, area, &mut state);
    }

    fn draw_dns(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let domain = self.selected_domain().unwrap_or_default();
        let records = self.records(&domain);
        let mut lines = Vec::new();
        if records.is_empty() {
            lines.push(Line::raw(format!(
                "{domain} has no DKIM key: mail from it goes out unsigned. Press g to generate one or i to import a PEM file."
            )));
        }
        for r in &records {
            lines.push(Line::styled(
                format!("; {} {} — {}", r.purpose.to_uppercase(), r.domain, r.note),
                theme.muted(),
            ));
            lines.push(Line::raw(r.zone_line()));
        }
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .title(Span::styled(
                        format!(" DNS records to publish for {domain} "),
                        theme.accent(),
                    ))
                    .style(theme.base()),
            ),
            area,
        );
    }
}

fn check_selector_field(v: &str) -> Option<String> {
    if v.trim().is_empty() {
        return None;
    }
    crate::db::check_selector(v).err().map(|e| e.to_string())
}

fn algorithms() -> Vec<String> {
    vec!["rsa".into(), "ed25519".into()]
}

/// Generate: domain, algorithm, selector.
pub fn generate_form<P>(purpose: P, domains: &[String], domain: &str) -> Form<P> {
    Form::new(
        "Generate DKIM key",
        purpose,
        vec![
            Field::choice("domain", "Domain", domains.to_vec(), domain),
            Field::choice("algorithm", "Algorithm", algorithms(), "rsa"),
            Field::text("selector", "Selector (empty: auto)", "").with_check(check_selector_field),
        ],
    )
}

/// Import: domain, PEM file path, selector.
pub fn import_form<P>(purpose: P, domains: &[String], domain: &str) -> Form<P> {
    Form::new(
        "Import DKIM key (PEM file)",
        purpose,
        vec![
            Field::choice("domain", "Domain", domains.to_vec(), domain),
            Field::text("path", "PEM file", "").with_check(required),
            Field::text("selector", "Selector (empty: auto)", "").with_check(check_selector_field),
        ],
    )
}

/// Rotate the active key of `key.domain`: algorithm (default the current one), selector, and
/// an optional PEM file (empty: a new key is generated).
pub fn rotate_form<P>(purpose: P, key: &DkimKey) -> Form<P> {
    Form::new(
        format!("Rotate DKIM key of {}", key.domain),
        purpose,
        vec![
            Field::choice("algorithm", "Algorithm", algorithms(), &key.algorithm),
            Field::text("selector", "New selector (empty: auto)", "")
                .with_check(check_selector_field),
            Field::text("path", "PEM file (empty: generate)", ""),
        ],
    )
}

/// The selector typed in a form (`None`: the default one).
pub fn selector_of<P>(form: &Form<P>) -> DbResult<Option<String>> {
    let s = form.value("selector").trim();
    if s.is_empty() {
        Ok(None)
    } else {
        crate::db::check_selector(s).map(Some)
    }
}

pub fn algorithm_of<P>(form: &Form<P>) -> Algorithm {
    form.value("algorithm").parse().unwrap_or(Algorithm::Rsa)
}

/// Reads and parses the PEM file named in the form.
pub fn read_pem<P>(form: &Form<P>) -> DbResult<PrivateKey> {
    let path = form.value("path").trim();
    let text = std::fs::read_to_string(path)
        .map_err(|e| DbError::Invalid(format!("cannot read key file {path}: {e}")))?;
    PrivateKey::from_pem(&text).map_err(|e| DbError::Invalid(e.to_string()))
}

/// A fresh key, made off the UI thread's hot path (RSA 2048 takes a moment).
pub async fn generate(algorithm: Algorithm) -> DbResult<PrivateKey> {
    tokio::task::spawn_blocking(move || PrivateKey::generate(algorithm))
        .await
        .map_err(|e| DbError::Invalid(format!("key generation stopped: {e}")))?
        .map_err(|e| DbError::Invalid(e.to_string()))
}
