//! Text out of raw records: kernel strings, leaf-first paths, argument areas, DNS wire names.

use super::*;

/// `example.com` in DNS wire format (length-prefixed labels, final zero
/// label), zero-padded to a dns_rules key; None when it does not fit.
pub fn dns_key(name: &str) -> Option<DnsKey> {
    let mut k = DnsKey {
        name: [0; DNS_NAME],
    };
    let mut at = 0;
    for label in name.trim_end_matches('.').split('.') {
        let b = label.as_bytes();
        if b.is_empty() || b.len() > 63 || at + 1 + b.len() + 1 > DNS_NAME - 1 {
            return None;
        }
        k.name[at] = b.len() as u8;
        k.name[at + 1..at + 1 + b.len()].copy_from_slice(&label.to_ascii_lowercase().into_bytes());
        at += 1 + b.len();
    }
    Some(k)
}

/// The dotted name of a wire-format name (`\x03www\x07example\x00`); None
/// when the labels do not add up.
pub fn dns_name_text(wire: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut at = 0;
    loop {
        let l = usize::from(*wire.get(at)?);
        if l == 0 {
            return (!out.is_empty()).then_some(out);
        }
        let label = wire.get(at + 1..at + 1 + l)?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&crate::escape::decode(label));
        at += 1 + l;
    }
}

/// Text of a NUL-padded kernel string (comm and the like); invalid UTF-8
/// bytes are shown as `\xNN` (`escape::decode`).
pub fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    crate::escape::decode(&bytes[..end])
}

/// Joins components written leaf first (each NUL-terminated) into an absolute
/// path. Returns the path and whether it is complete.
pub fn join_components(buf: &[u8], start: usize, end: usize, truncated: bool) -> (String, bool) {
    let end = end.min(buf.len());
    let start = start.min(end);
    let mut parts: Vec<&[u8]> = buf[start..end]
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .collect();
    parts.reverse();
    let mut out = String::new();
    if truncated {
        out.push_str("...");
    }
    for p in &parts {
        out.push('/');
        out.push_str(&crate::escape::decode(p));
    }
    if out.is_empty() {
        out.push('/');
    }
    (out, !truncated)
}

/// Lexically normalises `rel` against `base` (both as the kernel gave them):
/// "." and ".." are applied, repeated slashes collapse. Symlinks inside a
/// requested path that did not open cannot be followed and stay as named.
pub fn resolve_lexically(base: &str, rel: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    let joined;
    let full = if rel.starts_with('/') {
        rel
    } else {
        joined = format!("{base}/{rel}");
        joined.as_str()
    };
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            p => stack.push(p),
        }
    }
    if stack.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    for p in stack {
        out.push('/');
        out.push_str(p);
    }
    out
}

/// The path a file event names: the opened file's, or the requested one
/// resolved against its base directory when the open failed.
pub fn file_event_path(e: &FileEvent) -> String {
    let len = (e.path_len as usize).min(PATH_BUF);
    let truncated = e.path_flags & PATH_TRUNCATED != 0;
    match e.layout {
        PATH_REQUESTED => requested_path(&e.path[..len], e.req_len as usize, truncated),
        PATH_MOVED => {
            let start = (e.new_off as usize).min(len);
            let part = &e.path[start..len];
            let req = part
                .iter()
                .position(|&b| b == 0)
                .map_or(part.len(), |i| i + 1);
            requested_path(part, req, e.path_flags & PATH_NEW_TRUNCATED != 0)
        }
        _ => join_components(&e.path, 0, len, truncated).0,
    }
}

/// A link's or rename's old name (layout PATH_MOVED), else None.
pub fn file_event_old_path(e: &FileEvent) -> Option<String> {
    if e.layout != PATH_MOVED {
        return None;
    }
    let end = (e.new_off as usize).min(e.path_len as usize).min(PATH_BUF);
    let truncated = e.path_flags & PATH_TRUNCATED != 0;
    Some(requested_path(
        &e.path[..end],
        e.req_len as usize,
        truncated,
    ))
}

/// A requested string (the first `req_len` bytes of `part`, its NUL
/// included) made absolute against the directory whose components follow.
fn requested_path(part: &[u8], req_len: usize, truncated: bool) -> String {
    let req_len = req_len.min(part.len());
    let requested = cstr(&part[..req_len]);
    if requested.starts_with('/') {
        return resolve_lexically("/", &requested);
    }
    let (base, _) = join_components(part, req_len, part.len(), truncated);
    resolve_lexically(&base, &requested)
}

/// Arguments from the NUL-separated argument area.
pub fn split_argv(buf: &[u8], len: usize) -> Vec<String> {
    let len = len.min(buf.len());
    let mut v: Vec<String> = buf[..len]
        .split(|&b| b == 0)
        .map(crate::escape::decode)
        .collect();
    // The area ends with a NUL, which leaves one empty piece behind.
    if v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_leaf_first_components() {
        let buf = b"id_rsa\0.ssh\0root\0";
        assert_eq!(
            join_components(buf, 0, buf.len(), false),
            ("/root/.ssh/id_rsa".into(), true)
        );
        assert_eq!(
            join_components(buf, 0, buf.len(), true).0,
            ".../root/.ssh/id_rsa"
        );
        assert_eq!(join_components(b"", 0, 0, false).0, "/");
    }

    #[test]
    fn resolves_requested_paths() {
        assert_eq!(
            resolve_lexically("/home/u", "../u/.ssh//id_rsa"),
            "/home/u/.ssh/id_rsa"
        );
        assert_eq!(resolve_lexically("/home/u", "/etc/./shadow"), "/etc/shadow");
        assert_eq!(resolve_lexically("/", "../../x"), "/x");
    }

    #[test]
    fn dns_names_go_to_wire_format_and_back() {
        let k = dns_key("Evil.Example.").unwrap();
        assert_eq!(&k.name[..14], b"\x04evil\x07example\x00");
        assert!(k.name[14..].iter().all(|b| *b == 0));
        assert_eq!(dns_name_text(&k.name).as_deref(), Some("evil.example"));
        assert!(dns_key("a..b").is_none());
        assert!(dns_key(&"x".repeat(64)).is_none());
        assert!(
            dns_key(&["abcdefghij"; 24].join(".")).is_none(),
            "longer than a DNS name"
        );
        assert_eq!(
            dns_name_text(b"\x03www\x07exa"),
            None,
            "labels run past the end"
        );
        assert_eq!(dns_name_text(b"\x00"), None);
    }

    #[test]
    fn failed_open_path_joins_request_and_base() {
        let mut e = FileEvent {
            hdr: Header::default(),
            ret: -13,
            flags: 0,
            fmode: 0,
            path_flags: 0,
            dev: 0,
            ino: 0,
            path_len: 0,
            path_depth: 0,
            req_len: 0,
            layout: PATH_REQUESTED,
            syscall: 1,
            action: 0,
            ftype: 0,
            new_off: 0,
            igen: 0,
            path: [0; PATH_BUF],
        };
        let bytes = b"../.aws/credentials\0work\0home\0";
        e.path[..bytes.len()].copy_from_slice(bytes);
        e.req_len = 20;
        e.path_len = bytes.len() as u16;
        assert_eq!(file_event_path(&e), "/home/.aws/credentials");
    }

    #[test]
    fn moved_paths_are_the_old_then_the_new_name_each_joined_to_its_directory() {
        let mut e = FileEvent {
            hdr: Header::default(),
            ret: 0,
            flags: 0,
            fmode: 0,
            path_flags: 0,
            dev: 0,
            ino: 0,
            path_len: 0,
            path_depth: 0,
            req_len: 0,
            layout: PATH_MOVED,
            syscall: SYS_RENAME,
            action: 0,
            ftype: 0,
            new_off: 0,
            igen: 0,
            path: [0; PATH_BUF],
        };
        let old = b"cfg.tmp\0.docker\0home\0";
        let new = b"/home/u/.docker/config.json\0";
        e.path[..old.len()].copy_from_slice(old);
        e.path[old.len()..old.len() + new.len()].copy_from_slice(new);
        e.layout = PATH_MOVED;
        e.req_len = 8;
        e.new_off = old.len() as u16;
        e.path_len = (old.len() + new.len()) as u16;
        assert_eq!(file_event_path(&e), "/home/u/.docker/config.json");
        assert_eq!(
            file_event_old_path(&e).as_deref(),
            Some("/home/.docker/cfg.tmp")
        );
        // A relative new name is joined to its own directory, and its cut
        // is flagged apart from the old name's.
        let new = b"config.json\0.docker\0u\0";
        e.path[old.len()..old.len() + new.len()].copy_from_slice(new);
        e.path_len = (old.len() + new.len()) as u16;
        e.path_flags = PATH_NEW_TRUNCATED;
        assert_eq!(file_event_path(&e), "/.../u/.docker/config.json");
        assert_eq!(
            file_event_old_path(&e).as_deref(),
            Some("/home/.docker/cfg.tmp")
        );
        e.layout = PATH_RESOLVED;
        assert_eq!(file_event_old_path(&e), None);
    }

    #[test]
    fn splits_argv() {
        assert_eq!(
            split_argv(b"sh\0-c\0cat key\0", 14),
            vec!["sh", "-c", "cat key"]
        );
        assert_eq!(split_argv(b"sh\0-c\0ca", 8), vec!["sh", "-c", "ca"]);
    }

    #[test]
    fn invalid_utf8_is_shown_byte_by_byte() {
        assert_eq!(split_argv(b"a\xff\0b\xfe\0", 6), vec!["a\\xff", "b\\xfe"]);
        assert_eq!(cstr(b"c\x80\0\0"), "c\\x80");
        let (p, _) = join_components(b"k\xc3\0d\0", 0, 5, false);
        assert_eq!(p, "/d/k\\xc3");
        assert_eq!(
            dns_name_text(b"\x02\xff\xfe\x03com\x00").as_deref(),
            Some("\\xff\\xfe.com")
        );
    }
}
