//! The checks one policy value must pass, each naming what is wrong with it.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};

use super::{Cidr, Endpoint, EndpointHost, EVENT_BUFFER_MAX};

/// What is wrong with one value of a policy file. The field it sits in is
/// named by [`FieldError`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("empty pattern")]
    EmptyPattern,
    #[error(
        "`{0}`: path patterns are absolute (`/etc/shadow`) or start with `**/` (`**/.ssh/id_*`)"
    )]
    RelativePattern(String),
    #[error("`{pattern}`: {message}")]
    BadGlob { pattern: String, message: String },
    #[error("`{input}`: `{port}` is not a port (1..=65535)")]
    BadPort { input: String, port: String },
    #[error("`{0}`: missing `]`")]
    MissingBracket(String),
    #[error("`{0}`: no host")]
    NoHost(String),
    #[error("`{0}` is not an IP address or CIDR")]
    NotCidr(String),
    #[error("`{input}`: prefix length must be 0..={max}")]
    BadPrefix { input: String, max: u8 },
    #[error("{0:?} is not an IP address: write a bare address such as 192.0.2.53 or 2001:db8::53 (no port, prefix or zone)")]
    NotBareAddress(String),
    #[error("{0} is not the address of one DNS server (unspecified, multicast or broadcast)")]
    NotOneServer(IpAddr),
    #[error("`{0}` is not a valid domain name")]
    BadDomain(String),
    #[error("`{0}` is not an absolute path")]
    NotAbsolute(String),
    #[error("`{0}`: a canary path is a plain path, not a pattern")]
    CanaryPattern(String),
    #[error("`{0}`: write the path without `.`, `..` or a trailing `/`")]
    CanaryDots(String),
    #[error("`{0}`: a canary goes in a directory such as a home directory, not `/` or a pseudo filesystem")]
    CanaryPlace(String),
    #[error("`{0}` is listed twice")]
    Twice(String),
    #[error("`{0}`: use letters, digits and `_`")]
    BadKind(String),
    #[error("port 0 is not a destination port")]
    PortZero,
    #[error("`{0}` is not a variable-name pattern")]
    BadEnvPattern(String),
    /// globset's own words, for a pattern or a set of them.
    #[error("{0}")]
    Glob(String),
    #[error(
        "{0} is not supported: bee-trace never samples security events; remove the key or set 1.0"
    )]
    Sampling(f64),
    #[error("{0} is outside 64..={EVENT_BUFFER_MAX}: the queue is allocated whole at start")]
    BufferSize(usize),
    #[error("not a valid regular expression: {0}")]
    BadRegex(String),
}

/// A value refused, and the field it was found in (`network.blocked_ips[2]`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct FieldError {
    pub field: String,
    pub error: ValueError,
}

/// Names the field of a value check's error.
pub(super) trait InField<T> {
    fn in_field(self, field: impl Into<String>) -> Result<T, FieldError>;
}

impl<T> InField<T> for Result<T, ValueError> {
    fn in_field(self, field: impl Into<String>) -> Result<T, FieldError> {
        self.map_err(|error| FieldError {
            field: field.into(),
            error,
        })
    }
}

impl Endpoint {
    /// `host`, `host:port`, `[v6]:port`, `[v6/len]`, a bare IPv6 address or
    /// CIDR (no port), `a.b.c.d/len:port`, `*.domain:port`.
    pub fn parse(s: &str) -> Result<Endpoint, ValueError> {
        let t = s.trim();
        let bad_port = |p: &str| ValueError::BadPort {
            input: s.into(),
            port: p.into(),
        };
        let port_of = |p: &str| -> Result<u16, ValueError> {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| bad_port(p))
        };
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| ValueError::MissingBracket(s.into()))?;
            let port = match after {
                "" => None,
                a => Some(port_of(a.strip_prefix(':').ok_or_else(|| bad_port(a))?)?),
            };
            (h, port)
        } else if t.matches(':').count() > 1 {
            (t, None) // a bare IPv6 address or CIDR
        } else if let Some((h, p)) = t.rsplit_once(':') {
            (h, Some(port_of(p)?))
        } else {
            (t, None)
        };
        if host.is_empty() {
            return Err(ValueError::NoHost(s.into()));
        }
        let first = host.as_bytes()[0];
        let looks_ip = host.contains(':')
            || (first.is_ascii_digit()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'/'));
        let host = if looks_ip {
            EndpointHost::Net(Cidr::parse(host)?)
        } else {
            let (name, wildcard) = match host.strip_prefix("*.") {
                Some(n) => (n, true),
                None => (host, false),
            };
            validate_domain(name)?;
            EndpointHost::Domain {
                name: name.trim_end_matches('.').to_ascii_lowercase(),
                wildcard,
            }
        };
        Ok(Endpoint { host, port })
    }
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, ValueError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| ValueError::NotCidr(s.into()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix =
            match p {
                Some(p) => p.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| {
                    ValueError::BadPrefix {
                        input: s.into(),
                        max,
                    }
                })?,
                None => max,
            };
        Ok(Cidr { addr, prefix })
    }
}

/// One entry of network.dns_resolvers: a bare unicast address a DNS server
/// answers from (port 53).
pub(super) fn parse_resolver(s: &str) -> Result<IpAddr, ValueError> {
    let ip: IpAddr = s
        .trim()
        .parse()
        .map_err(|_| ValueError::NotBareAddress(s.into()))?;
    let ip = ip.to_canonical();
    let unusable =
        ip.is_unspecified() || ip.is_multicast() || matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    if unusable {
        return Err(ValueError::NotOneServer(ip));
    }
    Ok(ip)
}

pub(super) fn glob(pattern: &str) -> Result<GlobMatcher, ValueError> {
    Ok(build_glob(pattern)?.compile_matcher())
}

pub(super) fn build_glob(pattern: &str) -> Result<Glob, ValueError> {
    if pattern.is_empty() {
        return Err(ValueError::EmptyPattern);
    }
    if !pattern.starts_with('/') && !pattern.starts_with("**/") {
        return Err(ValueError::RelativePattern(pattern.into()));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| ValueError::BadGlob {
            pattern: pattern.into(),
            message: e.to_string(),
        })
}

pub(super) fn is_literal(s: &str) -> bool {
    !s.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// A canary path: absolute, plain (no glob, no `.`/`..` component), and not
/// in a pseudo filesystem.
pub(super) fn validate_canary_path(p: &str) -> Result<PathBuf, ValueError> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(ValueError::NotAbsolute(p.into()));
    }
    if !is_literal(p) || p.contains('\0') {
        return Err(ValueError::CanaryPattern(p.into()));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
        || p.ends_with('/')
    {
        return Err(ValueError::CanaryDots(p.into()));
    }
    let first = path.components().nth(1);
    if path.components().count() < 3
        || matches!(first, Some(Component::Normal(d)) if ["proc", "sys", "dev"].contains(&d.to_str().unwrap_or("")))
    {
        return Err(ValueError::CanaryPlace(p.into()));
    }
    Ok(path.to_path_buf())
}

pub(super) fn validate_domain(d: &str) -> Result<(), ValueError> {
    let d = d.trim_end_matches('.');
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(ValueError::BadDomain(d.into()))
    }
}

/// An event category a file rule gives its events.
pub(super) fn validate_kind(kind: &str) -> Result<(), ValueError> {
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ValueError::BadKind(kind.into()));
    }
    Ok(())
}

pub(super) fn validate_port(port: u16) -> Result<(), ValueError> {
    if port == 0 {
        return Err(ValueError::PortZero);
    }
    Ok(())
}

/// A glob over environment variable names (never a value: no `=`).
pub(super) fn env_name_glob(p: &str) -> Result<Glob, ValueError> {
    if p.is_empty() || p.contains(['=', '\0']) {
        return Err(ValueError::BadEnvPattern(p.into()));
    }
    Glob::new(p).map_err(|e| ValueError::Glob(e.to_string()))
}

pub(super) fn validate_sampling(rate: f64) -> Result<(), ValueError> {
    if rate != 1.0 {
        return Err(ValueError::Sampling(rate));
    }
    Ok(())
}

pub(super) fn validate_buffer_size(n: usize) -> Result<(), ValueError> {
    if !(64..=EVENT_BUFFER_MAX).contains(&n) {
        return Err(ValueError::BufferSize(n));
    }
    Ok(())
}
