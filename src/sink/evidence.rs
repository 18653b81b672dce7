//! Signed evidence: with a key, every record of the event stream carries a
//! sequence number and an HMAC-SHA256 chained to the previous record's MAC,
//! and the stream ends with a seal. `verify` finds the first record that
//! does not fit: an edited byte, a record deleted, inserted, moved or
//! duplicated, or a stream cut short.
//!
//! A signed line is the record's JSON object with `"seq":N` first and
//! `"mac":"<hex>"` last; the MAC covers the previous MAC and the line's exact
//! bytes without its `,"mac":…` suffix, so no JSON canonical form is needed.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest key accepted.
pub const KEY_MIN: usize = 16;

const MAC_FIELD: &str = ",\"mac\":\"";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Read(#[from] crate::input::InputError),
    #[error("the key file {0} holds fewer than {KEY_MIN} bytes; use e.g. `head -c 32 /dev/urandom > FILE`")]
    Short(std::path::PathBuf),
}

/// Reads a key file (its bytes, without a trailing newline). Never logs it.
/// The file must be regular, at most `input::KEY_MAX` bytes, and neither
/// changeable nor readable by anyone but root: whoever can read the key can
/// forge the log.
pub fn read_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    use crate::input::{read_regular, Trust, KEY_MAX};
    let mut key = read_regular(path, KEY_MAX, "key file", Trust::Secret)?;
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    if key.len() < KEY_MIN {
        return Err(KeyError::Short(path.into()));
    }
    Ok(key)
}

fn mac_of(key: &[u8], prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(prev);
    m.update(body);
    m.finalize().into_bytes().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Signs the records of one stream.
pub struct Signer {
    key: Vec<u8>,
    seq: u64,
    prev: [u8; 32],
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Signer {
        Signer {
            key,
            seq: 0,
            prev: [0; 32],
        }
    }

    /// `obj` is one JSON object on one line; returns the signed line (no
    /// newline).
    pub fn sign(&mut self, obj: &str) -> String {
        self.seq += 1;
        let rest = obj.trim().strip_prefix('{').unwrap_or("}");
        let sep = if rest.trim_start().starts_with('}') {
            ""
        } else {
            ","
        };
        let body = format!("{{\"seq\":{}{sep}{rest}", self.seq);
        let mac = mac_of(&self.key, &self.prev, body.as_bytes());
        self.prev = mac;
        format!("{}{MAC_FIELD}{}\"}}", &body[..body.len() - 1], hex(&mac))
    }

    /// The closing record: how many records came before it and the last
    /// one's MAC, itself signed.
    pub fn seal(&mut self) -> String {
        let obj = format!(
            "{{\"type\":\"seal\",\"count\":{},\"final_mac\":\"{}\"}}",
            self.seq,
            hex(&self.prev)
        );
        self.sign(&obj)
    }
}

/// The line to write for the JSON object `obj`: signed when there is a
/// signer, as it is otherwise.
pub fn line<'a>(signer: &mut Option<Signer>, obj: &'a str) -> std::borrow::Cow<'a, str> {
    match signer {
        Some(s) => s.sign(obj).into(),
        None => obj.into(),
    }
}

/// Where and why verification failed.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    /// The record (counted from 1 in the signed chain) that is missing or
    /// does not fit.
    pub record: u64,
    /// Where in the file it fails, counted from 1; `None` when the stream
    /// ends before it.
    pub line: Option<u64>,
    pub why: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "record {} (line {line}): {}", self.record, self.why),
            None => write!(
                f,
                "record {} (missing: the file ends before it): {}",
                self.record, self.why
            ),
        }
    }
}

/// Checks a signed stream; Ok(number of records before the seal).
///
/// A little over 80 lines: one pass over the lines with each check in the
/// order a reader verifies by hand (MAC, chain, sequence, seal), kept in one
/// place so no check can be skipped by a path through helpers.
pub fn verify(text: &str, key: &[u8]) -> Result<u64, Failure> {
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    let mut sealed = false;
    let fail = |record: u64, line: Option<u64>, why: String| Err(Failure { record, line, why });
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        if sealed {
            return fail(
                expected,
                Some(n),
                "a record follows the seal: records were appended".into(),
            );
        }
        let Some(at) = line.rfind(MAC_FIELD) else {
            // The watchdog of a killed bee-trace cannot sign its note: an
            // unsigned tamper tail after the signed records is a cut stream.
            let rest = &lines[i..];
            if rest.iter().all(|l| is_unsigned_tamper(l)) {
                return fail(
                    expected,
                    Some(n),
                    format!(
                        "no seal record: the stream is truncated (bee-trace was killed); {} \
                         unsigned tamper record(s) follow, written by its watchdog after \
                         it ended (not signed: read them as a claim)",
                        rest.len()
                    ),
                );
            }
            return fail(expected, Some(n), "no MAC: not a signed record".into());
        };
        let (body, seq, mac_hex) = match signed_parts(line, at) {
            Ok(parts) => parts,
            Err(why) => return fail(expected, Some(n), why.into()),
        };
        if seq != expected {
            let what = if seq < expected {
                "a record was duplicated or moved back"
            } else {
                "a record was deleted or moved forward"
            };
            return fail(
                expected,
                Some(n),
                format!("sequence number {seq} where {expected} was expected: {what}"),
            );
        }
        let mac = mac_of(key, &prev, body.as_bytes());
        if hex(&mac) != mac_hex {
            return fail(
                expected,
                Some(n),
                "MAC mismatch: the record was edited, inserted, or the key is not the one that signed it"
                    .into(),
            );
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
            if v["type"] == "seal" {
                if v["count"].as_u64() != Some(seq - 1) || v["final_mac"] != hex(&prev).as_str() {
                    return fail(
                        expected,
                        Some(n),
                        "the seal does not match the records before it".into(),
                    );
                }
                sealed = true;
            }
        } else {
            return fail(expected, Some(n), "the record is not a JSON object".into());
        }
        prev = mac;
        expected += 1;
    }
    if !sealed {
        return fail(
            expected,
            None,
            "no seal record: the stream is truncated (or bee-trace did not stop cleanly)".into(),
        );
    }
    Ok(expected - 2)
}

/// A signed line's body (without its MAC field), sequence number and MAC,
/// `at` being where its MAC field starts; or what is malformed.
fn signed_parts(line: &str, at: usize) -> Result<(String, u64, &str), &'static str> {
    let tail = &line[at + MAC_FIELD.len()..];
    let mac_hex = tail
        .strip_suffix("\"}")
        .filter(|h| h.len() == 64)
        .ok_or("malformed MAC field")?;
    let body = format!("{}}}", &line[..at]);
    let seq = body
        .strip_prefix("{\"seq\":")
        .map(|r| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or("no sequence number")?;
    Ok((body, seq, mac_hex))
}

/// A tamper record without a MAC: what bee-trace's watchdog writes to the
/// stream once bee-trace is gone (it holds no key).
fn is_unsigned_tamper(line: &str) -> bool {
    !line.contains(MAC_FIELD)
        && serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["type"] == "tamper")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn stream(n: usize) -> Vec<String> {
        let mut s = Signer::new(KEY.to_vec());
        let mut out: Vec<String> = (0..n)
            .map(|i| s.sign(&format!("{{\"type\":\"file\",\"id\":{i},\"path\":\"/x\"}}")))
            .collect();
        out.push(s.seal());
        out
    }

    fn check(lines: &[String]) -> Result<u64, Failure> {
        verify(&(lines.join("\n") + "\n"), KEY)
    }

    #[test]
    fn the_watchdogs_unsigned_record_after_a_kill_reads_as_truncation() {
        let mut s = stream(2);
        s.pop(); // killed: no seal
        s.push(r#"{"type":"tamper","op":"signal","signal":"SIGKILL"}"#.into());
        let f = check(&s).unwrap_err();
        assert_eq!(f.record, 3);
        assert!(
            f.why.contains("truncated") && f.why.contains("1 unsigned tamper"),
            "{}",
            f.why
        );
        // Anything else unsigned is what it was.
        s.push(r#"{"type":"file","path":"/x"}"#.into());
        assert_eq!(check(&s).unwrap_err().why, "no MAC: not a signed record");
    }

    #[test]
    fn a_sealed_stream_verifies_and_keeps_valid_json() {
        let s = stream(3);
        assert_eq!(check(&s), Ok(3));
        for l in &s {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["seq"].is_u64() && v["mac"].is_string(), "{l}");
        }
        assert_eq!(check(&stream(0)), Ok(0));
        let mut s2 = Signer::new(KEY.to_vec());
        assert!(s2.sign("{}").starts_with("{\"seq\":1,\"mac\":"));
    }

    #[test]
    fn every_kind_of_tampering_is_found_at_its_record() {
        let s = stream(4);
        // An edited byte.
        let mut t = s.clone();
        t[1] = t[1].replace("/x", "/y");
        assert_eq!(check(&t).unwrap_err().record, 2);
        // An edited MAC.
        let mut t = s.clone();
        let l = t[2].len();
        let flip = if t[2].as_bytes()[l - 4] == b'0' {
            "1"
        } else {
            "0"
        };
        t[2].replace_range(l - 4..l - 3, flip);
        assert_eq!(check(&t).unwrap_err().record, 3);
        // Deleted.
        let mut t = s.clone();
        t.remove(1);
        let f = check(&t).unwrap_err();
        assert_eq!(f.record, 2);
        assert!(f.why.contains("deleted"), "{}", f.why);
        // Inserted (signed with another key).
        let mut t = s.clone();
        let mut other = Signer::new(b"another key, 16+ bytes".to_vec());
        other.seq = 1;
        t.insert(2, other.sign("{\"type\":\"file\"}"));
        assert_eq!(check(&t).unwrap_err().record, 3);
        // Reordered.
        let mut t = s.clone();
        t.swap(1, 2);
        assert_eq!(check(&t).unwrap_err().record, 2);
        // Duplicated.
        let mut t = s.clone();
        t.insert(2, t[1].clone());
        let f = check(&t).unwrap_err();
        assert_eq!(f.record, 3);
        assert!(f.why.contains("duplicated"), "{}", f.why);
        // Truncated: the seal is gone.
        let mut t = s.clone();
        t.pop();
        let f = check(&t).unwrap_err();
        assert_eq!(f.record, 5);
        assert!(f.why.contains("truncated"), "{}", f.why);
        // Cut, then the watchdog's unsigned note: still a cut stream.
        t.push(r#"{"type":"tamper","op":"killed"}"#.to_string());
        let f = check(&t).unwrap_err();
        assert_eq!(f.record, 5);
        assert!(
            f.why.contains("truncated") && f.why.contains("1 unsigned"),
            "{}",
            f.why
        );
        // An unsigned line among signed ones is not a cut.
        let mut t = s.clone();
        t.insert(1, r#"{"type":"file"}"#.to_string());
        assert!(check(&t).unwrap_err().why.contains("no MAC"));
        // Cut mid-stream, seal and all.
        assert!(check(&s[..2]).is_err());
        // Appended after the seal.
        let mut t = s.clone();
        t.push(t[0].clone());
        assert_eq!(check(&t).unwrap_err().record, 6);
        // The wrong key.
        assert_eq!(
            verify(&s.join("\n"), b"not the key at all!!")
                .unwrap_err()
                .record,
            1
        );
    }

    #[test]
    fn a_failure_says_its_record_and_the_line_it_is_on_or_that_it_is_missing() {
        let mut t = stream(4);
        t[1] = t[1].replace("/x", "/y");
        let f = check(&t).unwrap_err();
        assert_eq!((f.record, f.line), (2, Some(2)));
        assert!(
            f.to_string().starts_with("record 2 (line 2): MAC mismatch"),
            "{f}"
        );
        // The seal, record 5, was cut: the file has 4 lines, not a line 5.
        t = stream(4);
        t.pop();
        let f = check(&t).unwrap_err();
        assert_eq!((f.record, f.line), (5, None));
        assert!(
            f.to_string()
                .starts_with("record 5 (missing: the file ends before it): no seal"),
            "{f}"
        );
        // The watchdog's note sits where the seal should be.
        t.push(r#"{"type":"tamper","op":"killed"}"#.to_string());
        let f = check(&t).unwrap_err();
        assert_eq!((f.record, f.line), (5, Some(5)));
    }

    fn why(lines: &[String]) -> (u64, Option<u64>, String) {
        let f = check(lines).unwrap_err();
        (f.record, f.line, f.why)
    }

    #[test]
    fn a_line_that_only_looks_signed_is_named_for_what_it_lacks() {
        let mac = "0".repeat(64);
        assert_eq!(
            why(&[format!(
                "{{\"seq\":1,\"type\":\"x\",\"mac\":\"{}\"}}",
                &mac[..10]
            )]),
            (1, Some(1), "malformed MAC field".into())
        );
        assert_eq!(
            why(&[format!("{{\"type\":\"x\",\"mac\":\"{mac}\"}}")]),
            (1, Some(1), "no sequence number".into())
        );
        // Signed bytes that are not JSON: the MAC fits, the record does not.
        let body = "{\"seq\":1,oops}";
        let m = hex(&mac_of(KEY, &[0; 32], body.as_bytes()));
        assert_eq!(
            why(&[format!("{{\"seq\":1,oops,\"mac\":\"{m}\"}}")]),
            (1, Some(1), "the record is not a JSON object".into())
        );
    }

    #[test]
    fn a_seal_that_miscounts_is_refused() {
        let mut s = Signer::new(KEY.to_vec());
        let mut lines = vec![s.sign("{\"type\":\"file\",\"id\":1}")];
        lines.push(s.sign("{\"type\":\"seal\",\"count\":5,\"final_mac\":\"00\"}"));
        assert_eq!(
            why(&lines),
            (
                2,
                Some(2),
                "the seal does not match the records before it".into()
            )
        );
    }

    #[test]
    fn a_key_file_is_secret_long_enough_and_read_without_its_newline() {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("bee-trace-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let k = d.join("key");
        let write = |bytes: &[u8], mode| {
            std::fs::write(&k, bytes).unwrap();
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(b"0123456789abcdef\r\n", 0o600);
        assert_eq!(read_key(&k).unwrap(), b"0123456789abcdef");
        write(b"short\n", 0o600);
        assert_eq!(
            read_key(&k).unwrap_err().to_string(),
            format!(
                "the key file {} holds fewer than 16 bytes; use e.g. `head -c 32 /dev/urandom > FILE`",
                k.display()
            )
        );
        write(b"0123456789abcdef", 0o644);
        assert!(matches!(
            read_key(&k),
            Err(KeyError::Read(crate::input::InputError::Readable { .. }))
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
