//! TLS client configurations (built once per distinct `tls_config`, cached) and the
//! certificate facts blackbox reports (`probe_ssl_*`, `probe_tls_version_info`).

use crate::config::{tls_version, TlsConfig};
use crate::registry::Ctx;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Go's `time.Time{}.Unix()`: what blackbox reports for a chain it did not verify.
pub const GO_ZERO_TIME_UNIX: f64 = -62135596800.0;

/// A built TLS client config plus the CA certificates it trusts (for chain expiry).
#[derive(Clone)]
pub struct BuiltTls {
    pub config: Arc<ClientConfig>,
    pub ca_der: Arc<Vec<CertificateDer<'static>>>,
    pub insecure: bool,
}

/// Cache of client configs by (tls_config, ALPN list).
pub struct TlsCache {
    provider: Arc<CryptoProvider>,
    roots: Arc<rustls::RootCertStore>,
    map: Mutex<HashMap<(TlsConfig, bool), BuiltTls>>,
}

impl Default for TlsCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsCache {
    pub fn new() -> TlsCache {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        TlsCache {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            roots: Arc::new(roots),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The config for `tls` offering `h2` in ALPN when `http2` (HTTP probes only).
    pub fn get(&self, tls: &TlsConfig, http2: bool) -> Result<BuiltTls, String> {
        let key = (tls.clone(), http2);
        if let Some(b) = self.map.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(b.clone());
        }
        let built = self.build(tls, http2)?;
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, built.clone());
        Ok(built)
    }

    fn build(&self, tls: &TlsConfig, http2: bool) -> Result<BuiltTls, String> {
        let min = tls
            .min_version
            .as_deref()
            .and_then(tls_version)
            .unwrap_or(12);
        let max = tls
            .max_version
            .as_deref()
            .and_then(tls_version)
            .unwrap_or(13);
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        // rustls speaks TLS 1.2 and 1.3 only; a min_version of TLS10/11 means "1.2+".
        if min <= 12 && max >= 12 {
            versions.push(&rustls::version::TLS12);
        }
        if max >= 13 {
            versions.push(&rustls::version::TLS13);
        }
        if versions.is_empty() {
            return Err("tls_config: max_version below TLS12 is not supported (rustls speaks TLS 1.2 and 1.3)".into());
        }
        let builder = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls_config: {e}"))?;
        let mut ca_der = Vec::new();
        let ca_pem: Option<Vec<u8>> = match (&tls.ca, &tls.ca_file) {
            (Some(pem), _) => Some(pem.as_bytes().to_vec()),
            (None, Some(path)) => Some(std::fs::read(path).map_err(|e| {
                format!("tls_config: unable to read CA file {}: {e}", path.display())
            })?),
            _ => None,
        };
        let builder = if tls.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(self.provider.clone())))
        } else if let Some(pem) = ca_pem {
            let mut store = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| format!("tls_config: CA PEM: {e}"))?;
                store
                    .add(c.clone())
                    .map_err(|e| format!("tls_config: CA certificate: {e}"))?;
                ca_der.push(c);
            }
            if ca_der.is_empty() {
                return Err(
                    "tls_config: unable to use specified CA cert: no certificates found".into(),
                );
            }
            builder.with_root_certificates(store)
        } else {
            builder.with_root_certificates(self.roots.clone())
        };
        let cert_pem = match (&tls.cert, &tls.cert_file) {
            (Some(p), _) => Some(p.as_bytes().to_vec()),
            (None, Some(path)) => Some(std::fs::read(path).map_err(|e| {
                format!(
                    "tls_config: unable to read cert file {}: {e}",
                    path.display()
                )
            })?),
            _ => None,
        };
        let mut config = match cert_pem {
            None => builder.with_no_client_auth(),
            Some(cert_pem) => {
                let key_pem = match (&tls.key, &tls.key_file) {
                    (Some(p), _) => p.as_bytes().to_vec(),
                    (None, Some(path)) => std::fs::read(path).map_err(|e| {
                        format!(
                            "tls_config: unable to read key file {}: {e}",
                            path.display()
                        )
                    })?,
                    _ => return Err("tls_config: client cert without key".into()),
                };
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("tls_config: client cert: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem)
                    .map_err(|e| format!("tls_config: client key: {e}"))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("tls_config: client cert: {e}"))?
            }
        };
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            Vec::new()
        };
        Ok(BuiltTls {
            config: Arc::new(config),
            ca_der: Arc::new(ca_der),
            insecure: tls.insecure_skip_verify,
        })
    }
}

/// `insecure_skip_verify`: accept any certificate, still check handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `ServerName` for SNI and verification from a host (IP literals allowed).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(h.to_string())
        .map_err(|e| format!("invalid TLS server name {host:?}: {e}"))
}

/// What a finished handshake tells about the peer.
#[derive(Clone, Debug)]
pub struct TlsFacts {
    pub version: &'static str,
    pub earliest_expiry: f64,
    pub last_chain_expiry: f64,
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub dns_names: String,
}

impl TlsFacts {
    pub fn from_conn(conn: &rustls::ClientConnection, built: &BuiltTls) -> TlsFacts {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
            _ => "unknown",
        };
        let certs: Vec<CertificateDer<'static>> = conn
            .peer_certificates()
            .map(|c| c.to_vec())
            .unwrap_or_default();
        facts(version, &certs, built)
    }

    /// Registers and sets the four TLS families, as blackbox does after a handshake.
    pub fn record(&self, ctx: &mut Ctx) {
        ctx.reg.gauge(
            "probe_ssl_earliest_cert_expiry",
            "Returns last SSL chain expiry in unixtime",
        );
        ctx.reg.gauge(
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "Returns last SSL chain expiry in timestamp",
        );
        ctx.reg.vec(
            "probe_ssl_last_chain_info",
            "Contains SSL leaf certificate information",
        );
        ctx.reg.vec(
            "probe_tls_version_info",
            "Returns the TLS version used or NaN when unknown",
        );
        ctx.reg
            .set("probe_ssl_earliest_cert_expiry", self.earliest_expiry);
        ctx.reg.set(
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            self.last_chain_expiry,
        );
        ctx.reg.set_l(
            "probe_ssl_last_chain_info",
            &[
                ("fingerprint_sha256", &self.fingerprint),
                ("subject", &self.subject),
                ("issuer", &self.issuer),
                ("subjectalternative", &self.dns_names),
            ],
            1.0,
        );
        ctx.reg
            .set_l("probe_tls_version_info", &[("version", self.version)], 1.0);
    }
}

struct CertInfo {
    not_after: f64,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
}

fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(CertInfo {
        not_after: c.validity().not_after.timestamp() as f64,
        subject_raw: c.subject().as_raw().to_vec(),
        issuer_raw: c.issuer().as_raw().to_vec(),
    })
}

fn facts(version: &'static str, certs: &[CertificateDer<'static>], built: &BuiltTls) -> TlsFacts {
    let infos: Vec<CertInfo> = certs.iter().filter_map(|c| cert_info(c)).collect();
    let earliest = infos
        .iter()
        .map(|i| i.not_after)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
    // Verified chain (Go's VerifiedChains): the presented chain, completed with the
    // configured CA certificate that issued its last element. Not verified → Go's zero.
    let last_chain = if built.insecure || infos.is_empty() {
        GO_ZERO_TIME_UNIX
    } else {
        let mut min = infos
            .iter()
            .map(|i| i.not_after)
            .fold(f64::INFINITY, f64::min);
        let mut issuer = infos
            .last()
            .map(|i| i.issuer_raw.clone())
            .unwrap_or_default();
        let mut seen_self_signed = infos.last().is_some_and(|i| i.issuer_raw == i.subject_raw);
        for _ in 0..8 {
            if seen_self_signed {
                break;
            }
            let Some(ca) = built
                .ca_der
                .iter()
                .filter_map(|d| cert_info(d))
                .find(|ca| ca.subject_raw == issuer)
            else {
                break;
            };
            min = min.min(ca.not_after);
            seen_self_signed = ca.issuer_raw == ca.subject_raw;
            issuer = ca.issuer_raw;
        }
        min
    };
    let (fingerprint, subject, issuer, dns_names) = match certs.first() {
        Some(leaf) => {
            let fp = hex::encode(sha2::Sha256::digest(leaf.as_ref()));
            match x509_parser::parse_x509_certificate(leaf) {
                Ok((_, c)) => {
                    let sans = match c.subject_alternative_name() {
                        Ok(Some(ext)) => ext
                            .value
                            .general_names
                            .iter()
                            .filter_map(|g| match g {
                                x509_parser::extensions::GeneralName::DNSName(n) => {
                                    Some(n.to_string())
                                }
                                _ => None,
                            })
                            .collect::<Vec<_>>()
                            .join(","),
                        _ => String::new(),
                    };
                    (fp, go_name(c.subject()), go_name(c.issuer()), sans)
                }
                Err(_) => (fp, String::new(), String::new(), String::new()),
            }
        }
        None => Default::default(),
    };
    TlsFacts {
        version,
        earliest_expiry: earliest.unwrap_or(GO_ZERO_TIME_UNIX),
        last_chain_expiry: last_chain,
        fingerprint,
        subject,
        issuer,
        dns_names,
    }
}

/// Go's `pkix.Name.String()`: RDNs in reverse of Go's canonical order, `,`-joined.
pub fn go_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    // Go's field order in ToRDNSequence, by OID arc 2.5.4.x
    const ORDER: [(u64, &str); 9] = [
        (6, "C"),
        (8, "ST"),
        (7, "L"),
        (9, "STREET"),
        (17, "POSTALCODE"),
        (10, "O"),
        (11, "OU"),
        (3, "CN"),
        (5, "SERIALNUMBER"),
    ];
    let mut by: HashMap<u64, Vec<String>> = HashMap::new();
    let mut extra: Vec<Vec<String>> = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let oid: Vec<u64> = atv
                .attr_type()
                .iter()
                .map(|i| i.collect())
                .unwrap_or_default();
            let value = atv.as_str().map(str::to_string).ok();
            match (oid.as_slice(), value) {
                ([2, 5, 4, n], Some(v)) if ORDER.iter().any(|(k, _)| k == n) => {
                    by.entry(*n).or_default().push(v)
                }
                _ => {
                    let any = atv.attr_value();
                    let mut der = vec![any.tag().0 as u8];
                    der.extend(der_len(any.data.len()));
                    der.extend_from_slice(any.data);
                    extra.push(vec![format!(
                        "{}=#{}",
                        atv.attr_type().to_id_string(),
                        hex::encode(der)
                    )]);
                }
            }
        }
    }
    let mut rdns: Vec<Vec<String>> = extra;
    for (n, short) in ORDER {
        let Some(vals) = by.get(&n) else { continue };
        if n == 3 || n == 5 {
            // Go keeps only the last CommonName / SerialNumber.
            if let Some(v) = vals.last() {
                rdns.push(vec![format!("{short}={}", escape_dn(v))]);
            }
        } else {
            rdns.push(
                vals.iter()
                    .map(|v| format!("{short}={}", escape_dn(v)))
                    .collect(),
            );
        }
    }
    rdns.iter()
        .rev()
        .map(|r| r.join("+"))
        .collect::<Vec<_>>()
        .join(",")
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn escape_dn(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (*c == ' ' || *c == '#'))
            || (i == chars.len() - 1 && *c == ' ');
        if special {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}
