//! The app's dispatch for the DKIM keys screen (a sub-screen of SMTP): the generate, import
//! and rotate forms, their confirmations and the store writes (through
//! `crate::dkim::store_key`, as `recalliq dkim` does), kept apart from `app.rs`. Every write
//! is confirmed first and audited by `confirmed` like the other confirmations
//! (`tui dkim-generate`, `tui dkim-import`, `tui dkim-rotate`).

use super::{App, FormPurpose, Pending, Popup};
use crate::db::{DbError, DkimKey};
use crate::dkim::{Algorithm, PrivateKey};
use crate::tui::keymap::{DkimCmd, ScreenId};
use crate::tui::screens::Session;
use crate::tui::screens::dkim;
use crate::tui::screens::templates::scope;
use crate::tui::widgets::confirm::Confirm;
use crate::tui::widgets::form::Form;

/// What a DKIM form is for.
#[derive(Debug, Clone)]
pub enum DkimForm {
    Generate,
    Import,
    Rotate { domain: String },
}

/// What a DKIM confirmation does on "yes". The imported key is held here between the form
/// and the answer (`PrivateKey` never prints its material). The variant names are the audit
/// action names (`ops::action_name`: `tui dkim-generate`, ...), hence the common prefix.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone)]
pub enum DkimPending {
    DkimGenerate {
        domain: String,
        algorithm: Algorithm,
        selector: Option<String>,
    },
    DkimImport {
        domain: String,
        path: String,
        key: PrivateKey,
        selector: Option<String>,
    },
    DkimRotate {
        domain: String,
        old_selector: String,
        algorithm: Algorithm,
        /// A key from a PEM file; `None`: a new one is generated.
        key: Option<PrivateKey>,
        selector: Option<String>,
    },
}

fn selector_text(selector: &Option<String>) -> String {
    match selector {
        Some(s) => format!("selector '{s}'"),
        None => "an automatic selector (riq + date and time)".into(),
    }
}

impl App {
    pub(super) async fn dkim_command(&mut self, cmd: DkimCmd) {
        let Some(session) = &self.session else { return };
        if session.tenant.is_none() {
            return self.deny("DKIM keys belong to a tenant: pick one first".into());
        }
        if cmd == DkimCmd::Open {
            self.goto(ScreenId::Dkim).await;
            return;
        }
        if !self.dkim.loaded {
            self.load(ScreenId::Dkim).await;
        }
        let Some(domain) = self.dkim.selected_domain() else {
            return self.deny("the tenant has no sender domain".into());
        };
        if cmd == DkimCmd::Copy {
            return self.copy_dns(&domain);
        }
        let form = match cmd {
            DkimCmd::Open | DkimCmd::Copy => return,
            DkimCmd::Generate => dkim::generate_form(
                FormPurpose::Dkim(DkimForm::Generate),
                &self.dkim.domains,
                &domain,
            ),
            DkimCmd::Import => dkim::import_form(
                FormPurpose::Dkim(DkimForm::Import),
                &self.dkim.domains,
                &domain,
            ),
            DkimCmd::Rotate => {
                let Some(active) = self.dkim.active_key(&domain).cloned() else {
                    return self.deny(format!(
                        "{domain} has no active DKIM key to rotate: press g to generate one"
                    ));
                };
                dkim::rotate_form(
                    FormPurpose::Dkim(DkimForm::Rotate {
                        domain: domain.clone(),
                    }),
                    &active,
                )
            }
        };
        self.popup = Some(Popup::Form(form));
    }

    /// `y`: the selected domain's records, as zone-file lines, onto the terminal's clipboard.
    fn copy_dns(&mut self, domain: &str) {
        let records = self.dkim.records(domain);
        if records.is_empty() {
            return self.deny(format!("{domain} has no DKIM key: nothing to publish yet"));
        }
        let text: Vec<String> = records.iter().map(|r| r.zone_line()).collect();
        if self.events.is_some() {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(super::logs_ops::osc52(&text.join("\n")).as_bytes());
            let _ = out.flush();
        }
        self.info(format!(
            "{} DNS records of {domain} copied to the clipboard (OSC 52)",
            text.len()
        ));
    }

    /// A DKIM form passed its field checks: read the PEM file (so a bad file is reported
    /// in the form), then ask for confirmation. Nothing is stored yet.
    pub(super) async fn dkim_form_submitted(
        &mut self,
        purpose: &DkimForm,
        form: &Form<FormPurpose>,
    ) -> Result<(), DbError> {
        let selector = dkim::selector_of(form)?;
        let (title, message, pending) = match purpose {
            DkimForm::Generate => {
                let domain = form.value("domain").to_string();
                let algorithm = dkim::algorithm_of(form);
                let already = self.dkim.active_key(&domain).map(|k| k.selector.clone());
                if let Some(s) = already {
                    return Err(DbError::Conflict(format!(
                        "{domain} has an active key ('{s}'): press r to rotate"
                    )));
                }
                (
                    "Generate DKIM key",
                    format!(
                        "Generate a new {algorithm} key for {domain} with {}? It signs new mail from {domain} at once; publish its DNS record (shown below the keys).",
                        selector_text(&selector)
                    ),
                    DkimPending::DkimGenerate {
                        domain,
                        algorithm,
                        selector,
                    },
                )
            }
            DkimForm::Import => {
                let domain = form.value("domain").to_string();
                let key = dkim::read_pem(form)?;
                if let Some(k) = self.dkim.active_key(&domain) {
                    return Err(DbError::Conflict(format!(
                        "{domain} has an active key ('{}'): r rotates (PEM optional)",
                        k.selector
                    )));
                }
                let path = form.value("path").trim().to_string();
                (
                    "Import DKIM key",
                    format!(
                        "Import the {} key in {path} for {domain} with {}? It signs new mail from {domain} at once; the file is not changed.",
                        key.algorithm(),
                        selector_text(&selector)
                    ),
                    DkimPending::DkimImport {
                        domain,
                        path,
                        key,
                        selector,
                    },
                )
            }
            DkimForm::Rotate { domain } => {
                let Some(old) = self.dkim.active_key(domain).cloned() else {
                    return Err(DbError::Invalid(format!(
                        "{domain} has no active DKIM key to rotate"
                    )));
                };
                let key = if form.value("path").trim().is_empty() {
                    None
                } else {
                    Some(dkim::read_pem(form)?)
                };
                let algorithm = key
                    .as_ref()
                    .map(PrivateKey::algorithm)
                    .unwrap_or_else(|| dkim::algorithm_of(form));
                (
                    "Rotate DKIM key",
                    format!(
                        "Sign mail from {domain} with a new {algorithm} key ({})? The current key (selector '{}') stays published so mail already sent keeps verifying; publish the new record before it matters.",
                        selector_text(&selector),
                        old.selector
                    ),
                    DkimPending::DkimRotate {
                        domain: domain.clone(),
                        old_selector: old.selector,
                        algorithm,
                        key,
                        selector,
                    },
                )
            }
        };
        self.popup = Some(Popup::Confirm(Confirm::new(
            title,
            message,
            Pending::Dkim(pending),
        )));
        Ok(())
    }

    /// "Yes" on a DKIM confirmation: the key is made (or taken from the file), encrypted and
    /// stored; the audit row and the toast come from `confirmed`.
    pub(super) async fn confirmed_dkim(
        &mut self,
        session: &Session,
        p: DkimPending,
    ) -> Result<(ScreenId, String), DbError> {
        let scope = scope(session)?;
        let config_dir = self.opts.config_dir.clone();
        let store = self.store.clone();
        let save = |domain: String, selector: Option<String>, key: PrivateKey, rotate: bool| {
            let store = store.clone();
            let config_dir = config_dir.clone();
            async move {
                crate::dkim::store_key(
                    &store,
                    scope,
                    &config_dir,
                    &domain,
                    selector.as_deref(),
                    &key,
                    rotate,
                )
                .await
                .map_err(|e| match e {
                    crate::dkim::DkimError::Db(e) => e,
                    other => DbError::Invalid(other.to_string()),
                })
            }
        };
        let describe = |k: &DkimKey| {
            format!(
                "{} key for {}, selector '{}'",
                k.algorithm, k.domain, k.selector
            )
        };
        let text = match p {
            DkimPending::DkimGenerate {
                domain,
                algorithm,
                selector,
            } => {
                let key = dkim::generate(algorithm).await?;
                let k = save(domain, selector, key, false).await?;
                self.dkim.focus_id = Some(k.id);
                format!("DKIM {} generated; publish its DNS record", describe(&k))
            }
            DkimPending::DkimImport {
                domain,
                path,
                key,
                selector,
            } => {
                let k = save(domain, selector, key, false).await?;
                self.dkim.focus_id = Some(k.id);
                format!(
                    "DKIM {} imported from {path}; publish its DNS record",
                    describe(&k)
                )
            }
            DkimPending::DkimRotate {
                domain,
                old_selector,
                algorithm,
                key,
                selector,
            } => {
                let key = match key {
                    Some(k) => k,
                    None => dkim::generate(algorithm).await?,
                };
                let k = save(domain, selector, key, true).await?;
                self.dkim.focus_id = Some(k.id);
                format!(
                    "DKIM key rotated: {} signs now, '{old_selector}' stays published",
                    describe(&k)
                )
            }
        };
        Ok((ScreenId::Dkim, text))
    }
}
