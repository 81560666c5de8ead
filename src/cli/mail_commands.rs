//! `template` and `smtp` subcommands: templates stored with the variables they use,
//! previews of the exact message a contact would get, the tenant's transport settings
//! (password encrypted, never printed) and live checks against the SMTP server.

use std::path::Path;

use serde_json::Value;

use super::args::{SecurityArg, SmtpCommand, SmtpSetArgs, TemplateCommand};
use super::commands::{open, read_password_stdin, tenant_by_domain};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::config::Config;
use crate::db::{
    Contact, NewTemplate, OutboxSettings, Page, Security, SmtpServer, SmtpSettings, Store,
    Template, Tenant, TenantScope,
};
use crate::mail::{self, MessageParts, Unsubscribe};
use crate::render::{Recipient, Renderer, TenantInfo, template_variables};
use crate::secrets::Secret;

impl From<crate::render::RenderError> for CliError {
    fn from(e: crate::render::RenderError) -> Self {
        CliError::failed(e.to_string())
    }
}

impl From<crate::mail::MailError> for CliError {
    fn from(e: crate::mail::MailError) -> Self {
        CliError::failed(e.to_string())
    }
}

impl From<crate::secrets::SecretError> for CliError {
    fn from(e: crate::secrets::SecretError) -> Self {
        CliError::failed(e.to_string())
    }
}

async fn tenant_and_scope(store: &Store, domain: &str) -> CliResult<(Tenant, TenantScope)> {
    let t = tenant_by_domain(store, domain).await?;
    let scope = super::acting::actor().tenant_scope(t.id)?;
    Ok((t, scope))
}

fn read_file(path: &Path, what: &str) -> CliResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read {what} {}: {e}", path.display())))
}

/// `--vars '{"k": "v"}'`: batch variables, a JSON object.
fn batch_vars(text: Option<&str>) -> CliResult<Option<Value>> {
    let Some(text) = text else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        Ok(_) => Err(CliError::usage("--vars must be a JSON object")),
        Err(e) => Err(CliError::usage(format!("--vars is not valid JSON: {e}"))),
    }
}

fn variables_of(t: &Template) -> Vec<String> {
    match t.variables.as_ref().map(|j| &j.0) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::Object(o)) => o.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

pub async fn template_command(config: &Config, cmd: TemplateCommand) -> CliResult<u8> {
    let store = open(config).await?;
    match cmd {
        TemplateCommand::Create {
            tenant,
            name,
            subject,
            html_file,
            text_file,
        } => {
            let (_, scope) = tenant_and_scope(&store, &tenant).await?;
            let html = read_file(&html_file, "HTML file")?;
            let text = text_file
                .as_deref()
                .map(|p| read_file(p, "text file"))
                .transpose()?;
            let vars = template_variables(&subject, Some(&html), text.as_deref())?;
            let new = NewTemplate {
                name,
                subject,
                body_html: Some(html),
                body_text: text,
                variables: Some(Value::from(vars)),
            };
            let t = store.create_template(scope, &new).await?;
            println!("{}", t.id);
            Ok(0)
        }
        TemplateCommand::List { tenant, json } => {
            let (_, scope) = tenant_and_scope(&store, &tenant).await?;
            let mut all = Vec::new();
            let mut page = Page::first(500);
            loop {
                let rows = store.list_templates(scope, page, None).await?;
                let done = rows.len() < 500;
                if let Some(last) = rows.last() {
                    page = Page::after(last.id, 500);
                }
                all.extend(rows);
                if done {
                    break;
                }
            }
            if json {
                print_json(&all);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.name.clone(),
                            t.subject.clone(),
                            if t.is_active { "yes" } else { "no" }.to_string(),
                            variables_of(t).join(","),
                        ]
                    })
                    .collect();
                print_table(&["ID", "NAME", "SUBJECT", "ACTIVE", "VARIABLES"], &rows);
            }
            Ok(0)
        }
        TemplateCommand::Show {
            tenant,
            template,
            json,
        } => {
            let (_, scope) = tenant_and_scope(&store, &tenant).await?;
            let t = store.find_template(scope, &template).await?;
            if json {
                print_json(&t);
            } else {
                println!("{:<10} {}", "id", t.id);
                println!("{:<10} {}", "name", t.name);
                println!("{:<10} {}", "subject", t.subject);
                println!("{:<10} {}", "active", t.is_active);
                println!("{:<10} {}", "variables", variables_of(&t).join(", "));
                println!("--- html ---");
                println!("{}", t.body_html.as_deref().unwrap_or(""));
                println!("--- text ---");
                match t.body_text.as_deref().filter(|s| !s.trim().is_empty()) {
                    Some(s) => println!("{s}"),
                    None => println!("(derived from the HTML)"),
                }
            }
            Ok(0)
        }
        TemplateCommand::Preview {
            tenant,
            template,
            group,
            email,
            vars,
        } => {
            let vars = batch_vars(vars.as_deref())?;
            let ctx =
                MessageContext::load(&store, config, &tenant, &template, &group, &email).await?;
            let message = ctx.build(
                &ctx.contact.email,
                ctx.contact.name.as_deref(),
                vars.as_ref(),
            )?;
            print!("{}", String::from_utf8_lossy(message.bytes()));
            Ok(0)
        }
        TemplateCommand::SendTest {
            tenant,
            template,
            group,
            contact,
            to,
            vars,
        } => {
            let vars = batch_vars(vars.as_deref())?;
            let ctx =
                MessageContext::load(&store, config, &tenant, &template, &group, &contact).await?;
            let message = ctx.build(&to, None, vars.as_ref())?;
            match &ctx.settings {
                None => Err(CliError::failed(format!(
                    "tenant {} has no mail transport: run `recalliq smtp set --tenant {}`",
                    ctx.tenant.domain, ctx.tenant.domain
                ))),
                Some(SmtpSettings::Outbox(o)) => {
                    let path = mail::write_outbox(Path::new(&o.path), &message)?;
                    println!("written to {}", path.display());
                    Ok(0)
                }
                Some(SmtpSettings::Smtp(server)) => {
                    let password = smtp_password(config, &ctx.tenant, server)?;
                    let (mut conn, _) =
                        mail::connect(server, password.as_ref(), mail::smtp::DEFAULT_TIMEOUT)
                            .await?;
                    let sent = conn.send(&message).await;
                    let _ = conn.quit().await;
                    match sent {
                        Ok(reply) => {
                            println!("{}", mail::smtp::describe_response(&reply));
                            Ok(0)
                        }
                        Err(e) => Err(CliError::failed(format!("server refused the message: {e}"))),
                    }
                }
            }
        }
    }
}

/// What a preview or test message is made of: tenant, template, contact, transport.
struct MessageContext {
    tenant: Tenant,
    template: Template,
    contact: Contact,
    settings: Option<SmtpSettings>,
    from_email: String,
    from_name: Option<String>,
    dkim: Option<crate::dkim::Signer>,
}

impl MessageContext {
    async fn load(
        store: &Store,
        config: &Config,
        domain: &str,
        template: &str,
        group: &str,
        email: &str,
    ) -> CliResult<MessageContext> {
        let (tenant, scope) = tenant_and_scope(store, domain).await?;
        let template = store.find_template(scope, template).await?;
        let group = store.find_group(scope, group).await?;
        let wanted = email.trim();
        let contact = store
            .list_contacts(scope, group.id, Page::first(100), Some(wanted))
            .await?
            .into_iter()
            .find(|c| c.email.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                CliError::failed(format!(
                    "{wanted} is not a contact of group '{}'",
                    group.name
                ))
            })?;
        let settings = store.smtp_settings(scope).await?;
        let senders = store.list_tenant_emails(scope).await?;
        let from_email = settings
            .as_ref()
            .and_then(|s| s.from_address().map(str::to_string))
            .or_else(|| {
                senders
                    .iter()
                    .find(|s| s.is_active)
                    .map(|s| s.email.clone())
            })
            .unwrap_or_else(|| format!("noreply@{}", tenant.domain));
        let from_name = senders
            .iter()
            .find(|s| s.email.eq_ignore_ascii_case(&from_email))
            .and_then(|s| s.name.clone())
            .or_else(|| Some(tenant.name.clone()));
        let dkim =
            crate::dkim::signer_for(store, scope, Some(&config.config_dir), &from_email).await?;
        Ok(MessageContext {
            tenant,
            template,
            contact,
            settings,
            from_email,
            from_name,
            dkim,
        })
    }

    fn build(
        &self,
        to_email: &str,
        to_name: Option<&str>,
        batch_vars: Option<&Value>,
    ) -> CliResult<mail::Message> {
        let unsubscribe = Unsubscribe {
            mailto: self.from_email.clone(),
            https_url: None,
        };
        let renderer = Renderer::new(&(&self.template).into())?;
        let rendered = renderer.render(
            &Recipient::from(&self.contact),
            batch_vars,
            &TenantInfo::from(&self.tenant),
            &unsubscribe.url_for_template(),
        )?;
        let reply_to = self.settings.as_ref().and_then(|s| s.reply_to());
        let parts = MessageParts {
            from_email: &self.from_email,
            from_name: self.from_name.as_deref(),
            to_email,
            to_name,
            reply_to,
            unsubscribe: &unsubscribe,
        };
        let mut message = mail::build_message(&parts, &rendered)?;
        if let Some(signer) = &self.dkim {
            signer.sign(&mut message);
        }
        Ok(message)
    }
}

fn smtp_password(
    config: &Config,
    tenant: &Tenant,
    server: &SmtpServer,
) -> CliResult<Option<Secret>> {
    Ok(mail::stored_password(
        &config.config_dir,
        tenant.id,
        server,
    )?)
}

pub async fn smtp_command(config: &Config, cmd: SmtpCommand) -> CliResult<u8> {
    match cmd {
        SmtpCommand::Set(args) => smtp_set(config, args).await,
        SmtpCommand::Show { tenant, json } => {
            let store = open(config).await?;
            let (t, scope) = tenant_and_scope(&store, &tenant).await?;
            match store.smtp_settings(scope).await? {
                Some(s) if json => print_json(&s.public_json()),
                Some(s) => print!("{s}"),
                None if json => print_json(&Value::Null),
                None => println!("tenant {} has no mail transport configured", t.domain),
            }
            Ok(0)
        }
        SmtpCommand::Test { tenant } => {
            let store = open(config).await?;
            let (t, scope) = tenant_and_scope(&store, &tenant).await?;
            match store.smtp_settings(scope).await? {
                None => Err(CliError::failed(format!(
                    "tenant {} has no mail transport: run `recalliq smtp set --tenant {}`",
                    t.domain, t.domain
                ))),
                Some(SmtpSettings::Outbox(o)) => {
                    std::fs::create_dir_all(&o.path).map_err(|e| {
                        CliError::failed(format!("outbox {} is not usable: {e}", o.path))
                    })?;
                    println!("outbox transport: messages are written to {}", o.path);
                    Ok(0)
                }
                Some(SmtpSettings::Smtp(server)) => {
                    let password = smtp_password(config, &t, &server)?;
                    match mail::test_connection(&server, password.as_ref()).await {
                        Ok(report) => {
                            print!("{report}");
                            println!("ok");
                            Ok(0)
                        }
                        Err((report, e)) => {
                            print!("{report}");
                            Err(CliError::failed(e.to_string()))
                        }
                    }
                }
            }
        }
    }
}

async fn smtp_set(config: &Config, args: SmtpSetArgs) -> CliResult<u8> {
    let store = open(config).await?;
    let (t, scope) = tenant_and_scope(&store, &args.tenant).await?;
    let settings = if let Some(path) = args.outbox {
        let path = path.unwrap_or_else(|| config.data_dir.join("outbox"));
        let path = std::path::absolute(&path).unwrap_or(path);
        SmtpSettings::Outbox(OutboxSettings {
            path: path.display().to_string(),
            from: args.from,
            reply_to: args.reply_to,
        })
    } else {
        let (Some(host), Some(port), Some(security)) = (args.host, args.port, args.security) else {
            return Err(CliError::usage(
                "--host, --port and --security are needed (or --outbox)",
            ));
        };
        let security = match security {
            SecurityArg::None => Security::None,
            SecurityArg::Starttls => Security::Starttls,
            SecurityArg::Tls => Security::Tls,
        };
        let mut server = SmtpServer::new(host, port, security);
        server.username = args.username;
        server.from = args.from;
        server.reply_to = args.reply_to;
        if let Some(n) = args.connections {
            server.connections = n;
        }
        server.rate_per_second = args.rate;
        server.rate_per_hour = args.rate_per_hour;
        server.tls_insecure = args.insecure_tls;
        let password = if args.password_stdin {
            Some(Secret::new(read_password_stdin()?))
        } else {
            None
        };
        let old = store.smtp_settings(scope).await?;
        mail::set_password(
            &config.config_dir,
            t.id,
            &mut server,
            password.as_ref(),
            old.as_ref(),
        )?;
        SmtpSettings::Smtp(server)
    };
    store.set_smtp_settings(scope, &settings).await?;
    println!("mail transport of {} saved", t.domain);
    Ok(0)
}
