//! DKIM (RFC 6376, RFC 8463): per-domain signing keys, the DNS records to publish, and
//! signing of outgoing messages (relaxed/relaxed).
//!
//! Signing works on the exact bytes that go out (`Message::bytes`) and puts the
//! `DKIM-Signature` header, pre-encoded, first, so what is hashed is what is sent.
//!
//! Private keys are held as `Secret` (never printed) and stored encrypted with the same
//! key file as SMTP passwords (`crate::secrets`), bound to tenant, domain and selector so a
//! ciphertext copied to another row does not decrypt. Only the public key (the `p=` value)
//! is ever shown.

use std::fmt;
use std::path::Path;

use crate::mail::Message;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{DkimKey, Store, TenantScope};
use crate::secrets::{Secret, SecretError, SecretKey};

/// Headers covered by every signature. Absent ones are signed as absent (RFC 6376 5.4), so
/// nobody can add them later without breaking the signature.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// RSA keys smaller than this are refused on import (RFC 8301 requires 1024).
pub const MIN_RSA_BITS: usize = 1024;
pub const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("{0}")]
    Key(String),
    #[error(
        "cannot decrypt the DKIM key of {domain} (selector '{selector}'): wrong key (RECALLIQ_SECRET_KEY or {location})"
    )]
    WrongKey {
        domain: String,
        selector: String,
        location: String,
    },
    #[error("DKIM key store: {0}")]
    Secret(String),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl From<SecretError> for DkimError {
    fn from(e: SecretError) -> Self {
        DkimError::Secret(e.to_string())
    }
}

/// Signing algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Rsa,
    Ed25519,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = DkimError;
    fn from_str(s: &str) -> Result<Self, DkimError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rsa" | "rsa-sha256" => Ok(Algorithm::Rsa),
            "ed25519" | "ed25519-sha256" => Ok(Algorithm::Ed25519),
            other => Err(DkimError::Key(format!(
                "unknown DKIM algorithm '{}' (expected rsa or ed25519)",
                crate::render::header_safe(other)
            ))),
        }
    }
}

/// A private key in the form lettre signs with: PKCS#1 PEM for RSA, the base64 32-byte seed
/// for Ed25519. `Debug` never shows it.
#[derive(Clone)]
pub struct PrivateKey {
    algorithm: Algorithm,
    material: Secret,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, ***)", self.algorithm)
    }
}

fn key_err(what: &str) -> impl Fn(String) -> DkimError + '_ {
    move |e| DkimError::Key(format!("{what}: {e}"))
}

impl PrivateKey {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A fresh key: RSA 2048 or Ed25519.
    pub fn generate(algorithm: Algorithm) -> Result<PrivateKey, DkimError> {
        match algorithm {
            Algorithm::Rsa => {
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(|e| key_err("cannot generate an RSA key")(e.to_string()))?;
                Self::from_rsa(&key)
            }
            Algorithm::Ed25519 => {
                let seed: [u8; 32] = rand::random();
                Ok(PrivateKey {
                    algorithm,
                    material: Secret::new(B64.encode(seed)),
                })
            }
        }
    }

    fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<PrivateKey, DkimError> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(DkimError::Key(format!(
                "the RSA key has {bits} bits; DKIM needs at least {MIN_RSA_BITS} (2048 recommended)"
            )));
        }
        let pem = key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .map_err(|e| key_err("cannot encode the RSA key")(e.to_string()))?;
        Ok(PrivateKey {
            algorithm: Algorithm::Rsa,
            material: Secret::new(pem.as_str()),
        })
    }

    /// A PEM private key: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`, RSA or
    /// Ed25519). Encrypted PEM is refused with a hint.
    pub fn from_pem(text: &str) -> Result<PrivateKey, DkimError> {
        let text = text.trim();
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(text)
                .map_err(|e| key_err("not a valid PKCS#1 RSA private key")(e.to_string()))?;
            return Self::from_rsa(&key);
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(DkimError::Key(
                "the PEM key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)"
                    .into(),
            ));
        }
        if text.contains("-----BEGIN PRIVATE KEY-----") {
            if let Ok(key) =
                <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(text)
            {
                return Self::from_rsa(&key);
            }
            return match <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(text) {
                Ok(key) => Ok(PrivateKey {
                    algorithm: Algorithm::Ed25519,
                    material: Secret::new(B64.encode(key.to_bytes())),
                }),
                Err(_) => Err(DkimError::Key(
                    "the PKCS#8 key is neither RSA nor Ed25519".into(),
                )),
            };
        }
        Err(DkimError::Key(
            "not a PEM private key (expected -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)".into(),
        ))
    }

    /// The base64 public key, the `p=` value of the DNS record: SubjectPublicKeyInfo DER for
    /// RSA (RFC 6376), the raw 32 bytes for Ed25519 (RFC 8463).
    pub fn public_key_b64(&self) -> Result<String, DkimError> {
        match self.algorithm {
            Algorithm::Rsa => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::EncodePublicKey;
                let key = rsa::RsaPrivateKey::from_pkcs1_pem(self.material.expose())
                    .map_err(|e| key_err("stored RSA key")(e.to_string()))?;
                let der = key
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| key_err("RSA public key")(e.to_string()))?;
                Ok(B64.encode(der.as_bytes()))
            }
            Algorithm::Ed25519 => {
                let seed: [u8; 32] = B64
                    .decode(self.material.expose())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| DkimError::Key("stored Ed25519 key is malformed".into()))?;
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                Ok(B64.encode(key.verifying_key().to_bytes()))
            }
        }
    }

    fn signing_key(&self) -> Result<SigningKey, DkimError> {
        match self.algorithm {
            Algorithm::Rsa => {
                use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
                let key = rsa::RsaPrivateKey::from_pkcs1_pem(self.material.expose())
                    .map_err(|e| DkimError::Key(format!("unusable RSA key: {e}")))?;
                // ring signs several times faster (and in constant time); it takes keys of
                // 2048 bits and more, smaller imported ones stay with the rsa crate.
                let ring_key = key
                    .to_pkcs1_der()
                    .ok()
                    .and_then(|der| ring::signature::RsaKeyPair::from_der(der.as_bytes()).ok());
                Ok(match ring_key {
                    Some(k) => SigningKey::RingRsa(Box::new(k)),
                    None => SigningKey::Rsa(Box::new(key)),
                })
            }
            Algorithm::Ed25519 => {
                let seed: [u8; 32] = B64
                    .decode(self.material.expose())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| DkimError::Key("stored Ed25519 key is malformed".into()))?;
                Ok(SigningKey::Ed25519(Box::new(
                    ed25519_dalek::SigningKey::from_bytes(&seed),
                )))
            }
        }
    }

    /// Encrypts the key for storage, bound to tenant, domain and selector.
    pub fn encrypt(
        &self,
        key: &SecretKey,
        tenant_id: i32,
        domain: &str,
        selector: &str,
    ) -> Result<String, DkimError> {
        Ok(key.encrypt_bound(&self.material, &context(tenant_id, domain, selector))?)
    }

    /// The private key of a stored row.
    pub fn decrypt(key: &SecretKey, row: &DkimKey) -> Result<PrivateKey, DkimError> {
        let algorithm: Algorithm = row.algorithm.parse()?;
        let material = key
            .decrypt_bound(
                &row.private_key_enc,
                &context(row.tenant_id, &row.domain, &row.selector),
            )
            .map_err(|e| match e {
                SecretError::WrongKey(location) => DkimError::WrongKey {
                    domain: row.domain.clone(),
                    selector: row.selector.clone(),
                    location,
                },
                other => other.into(),
            })?;
        Ok(PrivateKey {
            algorithm,
            material,
        })
    }
}

fn context(tenant_id: i32, domain: &str, selector: &str) -> Vec<u8> {
    format!("recalliq dkim key, tenant {tenant_id}, {domain}, {selector}").into_bytes()
}

enum SigningKey {
    RingRsa(Box<ring::signature::RsaKeyPair>),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// Signs messages from one domain with one key. `Debug` shows no key.
pub struct Signer {
    domain: String,
    selector: String,
    algorithm: Algorithm,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(key: &PrivateKey, domain: &str, selector: &str) -> Result<Signer, DkimError> {
        Ok(Signer {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_ascii_lowercase(),
            algorithm: key.algorithm,
            key: key.signing_key()?,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn selector(&self) -> &str {
        &self.selector
    }
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Adds the DKIM-Signature header. Call it last: any header changed afterwards breaks
    /// the signature.
    pub fn sign(&self, message: &mut Message) {
        let timestamp = chrono::Utc::now().timestamp();
        let value = self.signature_value(message.bytes(), timestamp);
        message.prepend_header("DKIM-Signature", &value);
    }

    /// The folded value of the DKIM-Signature header for the message `raw` (CRLF line
    /// ends, as `build_message` writes it).
    pub fn signature_value(&self, raw: &[u8], timestamp: i64) -> String {
        let (head, body) = split_message(raw);
        let bh = B64.encode(Sha256::digest(canonical_body(body)));
        let fields = header_fields(head);
        let mut used = vec![false; fields.len()];
        let mut signed = Vec::new();
        for name in SIGNED_HEADERS {
            // The last unused instance, as verifiers pick them (RFC 6376 5.4.2).
            if let Some(i) = (0..fields.len())
                .rev()
                .find(|&i| !used[i] && fields[i].0.eq_ignore_ascii_case(name))
            {
                used[i] = true;
                signed.push(canonical_header(fields[i].0, fields[i].1));
            }
        }
        let h: Vec<String> = SIGNED_HEADERS
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        let unsigned = format!(
            "v=1; a={}-sha256; c=relaxed/relaxed; d={}; s={};\r\n t={timestamp}; h={};\r\n bh={bh};\r\n b=",
            self.algorithm,
            self.domain,
            self.selector,
            h.join(":"),
        );
        let mut data = signed.concat();
        let own = canonical_header("DKIM-Signature", &unsigned);
        data.push_str(own.trim_end_matches("\r\n"));
        let digest = Sha256::digest(data.as_bytes());
        let signature = match &self.key {
            SigningKey::RingRsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    data.as_bytes(),
                    &mut sig,
                )
                .map(|()| B64.encode(&sig))
                .unwrap_or_default()
            }
            SigningKey::Rsa(k) => k
                .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
                .map(|s| B64.encode(s))
                .unwrap_or_default(),
            SigningKey::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                B64.encode(k.sign(&digest).to_bytes())
            }
        };
        let chunks: Vec<&str> = signature
            .as_bytes()
            .chunks(72)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!("{unsigned}{}", chunks.join("\r\n "))
    }
}

/// Header block and body of a formatted message.
fn split_message(raw: &[u8]) -> (&[u8], &[u8]) {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&raw[..i + 2], &raw[i + 4..]),
        None => (raw, &[]),
    }
}

/// The header fields of a header block: (name, raw value with folding).
fn header_fields(head: &[u8]) -> Vec<(&str, &str)> {
    let text = std::str::from_utf8(head).unwrap_or_default();
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = fields.last_mut() {
                last.1 = pos + line.len();
            }
        } else if !line.trim().is_empty() {
            fields.push((pos, pos + line.len()));
        }
        pos += line.len();
    }
    fields
        .into_iter()
        .filter_map(|(a, b)| {
            let field = text[a..b].trim_end_matches("\r\n");
            field.split_once(':')
        })
        .collect()
}

/// Relaxed header canonicalisation (RFC 6376 3.4.2): lower-case name, unfolded value with
/// whitespace runs reduced to one space and trimmed, `name:value\r\n`.
fn canonical_header(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let mut v = String::with_capacity(unfolded.len());
    let mut space = false;
    for c in unfolded.chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space && !v.is_empty() {
                v.push(' ');
            }
            space = false;
            v.push(c);
        }
    }
    format!("{}:{}\r\n", name.trim().to_ascii_lowercase(), v)
}

/// Relaxed body canonicalisation (RFC 6376 3.4.4): whitespace runs become one space,
/// trailing whitespace of lines and trailing empty lines go, a non-empty body ends in CRLF.
fn canonical_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    // A body ending in CRLF splits into a last empty piece: not a line.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                }
                space = false;
                out.push(b);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    while out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    if out == b"\r\n" {
        out.clear();
    }
    out
}

/// The domain part of an address, lower-cased (`None` without '@').
pub fn domain_of(email: &str) -> Option<String> {
    email
        .trim()
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// The signer for mail from `from_email`: the tenant's active key of that domain, or `None`
/// when the domain has none (mail then goes out unsigned; pre-flight warns).
pub async fn signer_for(
    store: &Store,
    scope: TenantScope,
    config_dir: Option<&Path>,
    from_email: &str,
) -> Result<Option<Signer>, DkimError> {
    let Some(domain) = domain_of(from_email) else {
        return Ok(None);
    };
    let Some(row) = store.active_dkim_key(scope, &domain).await? else {
        return Ok(None);
    };
    let secret = match config_dir {
        Some(dir) => SecretKey::load(dir)?,
        None => {
            return Err(DkimError::Secret(
                "a DKIM key is stored but no key directory is configured".into(),
            ));
        }
    };
    let key = PrivateKey::decrypt(&secret, &row)?;
    Ok(Some(Signer::new(&key, &row.domain, &row.selector)?))
}

/// The domains a tenant may sign for: its own domain and those of its sender addresses
/// (inactive ones included), sorted, lower-case.
pub async fn sender_domains(
    store: &Store,
    tenant_domain: &str,
    scope: TenantScope,
) -> Result<Vec<String>, DkimError> {
    let mut domains: Vec<String> = store
        .list_tenant_emails(scope)
        .await?
        .iter()
        .filter_map(|e| domain_of(&e.email))
        .collect();
    domains.push(tenant_domain.trim().to_ascii_lowercase());
    domains.sort();
    domains.dedup();
    Ok(domains)
}

/// The selector used when none is given: `riq` + the current UTC date and time.
pub fn default_selector() -> String {
    format!("riq{}", chrono::Utc::now().format("%Y%m%d%H%M%S"))
}

/// Encrypts `key` with the key file of `config_dir` and stores it as the active key of
/// `domain` under `selector` (the default one when `None`). With `rotate`, the domain must
/// have an active key, which then stays published; without it, a domain with an active key
/// is refused. The CLI and the TUI both store keys through this.
pub async fn store_key(
    store: &Store,
    scope: TenantScope,
    config_dir: &Path,
    domain: &str,
    selector: Option<&str>,
    key: &PrivateKey,
    rotate: bool,
) -> Result<DkimKey, DkimError> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if rotate && store.active_dkim_key(scope, &domain).await?.is_none() {
        return Err(DkimError::Key(format!(
            "domain {domain} has no active DKIM key to rotate: generate one first"
        )));
    }
    let selector = crate::db::check_selector(
        selector
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(default_selector)
            .as_str(),
    )?;
    let secret = SecretKey::load(config_dir)?;
    let enc = key.encrypt(&secret, scope.tenant_id(), &domain, &selector)?;
    let public = key.public_key_b64()?;
    Ok(store
        .add_dkim_key(
            scope,
            &crate::db::NewDkimKey {
                domain: &domain,
                selector: &selector,
                algorithm: key.algorithm().as_str(),
                private_key_enc: &enc,
                public_key: &public,
            },
            rotate,
        )
        .await?)
}

/// One DNS record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// What it is for: `dkim`, `spf` or `dmarc`.
    pub purpose: &'static str,
    pub domain: String,
    /// Fully qualified owner name, without the trailing dot.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
    /// The selector (DKIM records only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// `active` or `published` (DKIM records only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub note: String,
}

impl DnsRecord {
    /// The record as a zone-file line; TXT values longer than 255 bytes are split into
    /// several quoted strings, as DNS requires.
    pub fn zone_line(&self) -> String {
        let chunks: Vec<String> = self
            .value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{}. 3600 IN {} {}", self.name, self.kind, chunks.join(" "))
    }
}

/// The DKIM TXT value for a public key.
pub fn dkim_txt_value(algorithm: Algorithm, public_b64: &str) -> String {
    format!("v=DKIM1; k={algorithm}; p={public_b64}")
}

/// The SPF mechanism naming a sending host: ip4:/ip6: for addresses, a: for names.
fn spf_mechanism(host: &str) -> String {
    match host.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("ip4:{ip}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("ip6:{ip}"),
        Err(_) => format!("a:{}", host.trim().trim_end_matches('.')),
    }
}

/// The records a tenant publishes for its DKIM keys: per domain, one DKIM TXT per key
/// that is active or still published, an SPF suggestion (naming `smtp_host` when the tenant
/// sends through one) and a DMARC starting policy (p=none, reports to the domain).
pub fn dns_records(keys: &[DkimKey], smtp_host: Option<&str>) -> Vec<DnsRecord> {
    let mut out = Vec::new();
    let mut domains: Vec<&str> = keys.iter().map(|k| k.domain.as_str()).collect();
    domains.sort_unstable();
    domains.dedup();
    for domain in domains {
        for k in keys.iter().filter(|k| k.domain == domain) {
            let algorithm: Algorithm = k.algorithm.parse().unwrap_or(Algorithm::Rsa);
            out.push(DnsRecord {
                purpose: "dkim",
                domain: domain.to_string(),
                name: format!("{}._domainkey.{domain}", k.selector),
                kind: "TXT",
                value: dkim_txt_value(algorithm, &k.public_key),
                selector: Some(k.selector.clone()),
                status: Some(k.status.clone()),
                note: if k.status == crate::db::DKIM_ACTIVE {
                    "signs new mail".into()
                } else {
                    "rotated out: keep published until mail signed with it has been delivered (a few days)".into()
                },
            });
        }
        let spf = match smtp_host.filter(|h| !h.trim().is_empty()) {
            Some(h) => format!("v=spf1 mx {} ~all", spf_mechanism(h)),
            None => "v=spf1 mx ~all".to_string(),
        };
        out.push(DnsRecord {
            purpose: "spf",
            domain: domain.to_string(),
            name: domain.to_string(),
            kind: "TXT",
            value: spf,
            selector: None,
            status: None,
            note: "suggestion: a domain has only one SPF record, merge with an existing one; use -all once all senders are listed".into(),
        });
        out.push(DnsRecord {
            purpose: "dmarc",
            domain: domain.to_string(),
            name: format!("_dmarc.{domain}"),
            kind: "TXT",
            value: format!("v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:dmarc-reports@{domain}"),
            selector: None,
            status: None,
            note: "starting policy: monitor with p=none, then move to p=quarantine and p=reject"
                .into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_canonicalisation_matches_rfc6376_example() {
        // RFC 6376 section 3.4.5.
        let head = b"A: X\r\nB : Y\t\r\n\tZ  \r\n";
        let fields = header_fields(head);
        let canon: String = fields.iter().map(|(n, v)| canonical_header(n, v)).collect();
        assert_eq!(canon, "a:X\r\nb:Y Z\r\n");
        assert_eq!(
            canonical_body(b" C \r\nD \t E\r\n\r\n\r\n"),
            b" C\r\nD E\r\n"
        );
        assert_eq!(canonical_body(b"\r\n\r\n"), b"");
        assert_eq!(canonical_body(b"x"), b"x\r\n");
        let (h, b) = split_message(b"A: 1\r\n\r\nbody\r\n");
        assert_eq!((h, b), (&b"A: 1\r\n"[..], &b"body\r\n"[..]));
    }

    #[test]
    fn keys_and_signers_never_print_key_material() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let signer = Signer::new(&key, "Acme.Test", "S1").unwrap();
        let shown = format!("{key:?} {signer:?}");
        assert!(!shown.contains(key.material.expose()), "{shown}");
        assert_eq!((signer.domain(), signer.selector()), ("acme.test", "s1"));
    }
}
