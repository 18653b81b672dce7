//! Events and signals as one human line each, escaped for the terminal
//! (the NDJSON form is the event types' own serialisation, docs/events.md).

use crate::event::{Detail, Event};

/// A signal as one human line (escaped by `signal_line`).
pub fn signal_human(g: &crate::rules::Signal) -> String {
    format!(
        "{} {:<8} signal  {}",
        g.ts,
        g.severity.as_str().to_uppercase(),
        crate::report::signal_line(g)
    )
}

/// A human line (already escaped, so it holds no escape sequence of its
/// own) with its severity word coloured, when `sev` is given.
pub fn coloured(line: String, sev: Option<crate::event::Severity>) -> String {
    use crate::event::Severity;
    let Some(sev) = sev else { return line };
    let code = match sev {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Warning => "33",
        Severity::Info => "2",
    };
    // The line is "<ts> <SEVERITY padded> ...": the word follows the first space.
    let word = sev.as_str().to_uppercase();
    match line.split_once(' ') {
        Some((ts, rest)) if rest.starts_with(&word) => {
            format!("{ts} \x1b[{code}m{word}\x1b[0m{}", &rest[word.len()..])
        }
        _ => line,
    }
}

fn lineage(e: &Event) -> String {
    let mut s = String::new();
    for a in e.ancestors.iter().take(4) {
        s.push_str(&format!(" <- {}[{}]", a.comm, a.pid));
    }
    if e.ancestors.len() > 4 {
        s.push_str(" <- ...");
    }
    s
}

/// An event as one human line. Every field that came from the watched
/// system is in it, so the whole line is escaped for the terminal: one
/// event, one line, nothing a terminal acts on.
pub fn human(e: &Event) -> String {
    let who = format!("{}[{}] uid={}", e.comm, e.pid, e.uid);
    let what = match &e.detail {
        Detail::Process {
            kind, exit_code, ..
        } => match exit_code {
            Some(c) => format!("{kind} code={c}"),
            None => exec_text(e.exe.as_str(), &e.detail),
        },
        Detail::File {
            path,
            access,
            result,
            category,
            action,
            repeats,
            old_path,
            via,
            ..
        } => {
            let via = via.map(|v| format!(" via {v}")).unwrap_or_default();
            match (action, repeats, old_path) {
                (Some(a), _, _) => format!(
                    "{access} {path} ({category}, {result}){via} {}",
                    a.to_uppercase()
                ),
                (None, Some(n), _) => {
                    format!("{access} {path} ({category}, {result}){via} {n} more times")
                }
                (None, None, Some(old)) => {
                    format!("{access} {old} -> {path} ({category}, {result}){via}")
                }
                (None, None, None) => format!("{access} {path} ({category}, {result}){via}"),
            }
        }
        Detail::Network { .. } => network_text(&e.detail),
        Detail::Memory {
            kind,
            target_pid,
            target_comm,
            result,
            request,
            ..
        } => match request {
            Some(r) => format!("{kind} {r} -> {target_comm}[{target_pid}] ({result})"),
            None => format!("{kind} -> {target_comm}[{target_pid}] ({result})"),
        },
        Detail::Tamper { .. } => tamper_text(&e.detail),
        Detail::Socket {
            op,
            family,
            sock_type,
            protocol,
            result,
        } => format!("{op} {family} {sock_type} {protocol} ({result})"),
        Detail::Serve { .. } => serve_text(&e.detail),
    };
    let line = format!(
        "{} {:<8} {:<7} {} by {}{}",
        e.ts,
        e.severity.as_str().to_uppercase(),
        e.kind,
        what,
        who,
        lineage(e)
    );
    crate::escape::terminal(&line).into_owned()
}

/// What an exec says: the executable and its arguments, then what the
/// event adds about them (the script run, a fileless or dropped program
/// with its digest, the loader's variables, a socket for stdio).
fn exec_text(exe: &str, d: &Detail) -> String {
    let Detail::Process {
        kind,
        argv,
        argv_truncated,
        script,
        fileless,
        dropped,
        sha256,
        loader_env,
        loader_env_truncated,
        stdio_socket,
        ..
    } = d
    else {
        return String::new();
    };
    let mut s = format!("{kind} {exe} {}", shell_words(argv));
    if *argv_truncated == Some(true) {
        s.push_str(" ...");
    }
    if let Some(sc) = script {
        s.push_str(&format!(" [script {sc}]"));
    }
    if *fileless == Some(true) {
        s.push_str(" [fileless]");
    }
    if *dropped == Some(true) {
        s.push_str(" [dropped during the run]");
    }
    if let Some(h) = sha256 {
        s.push_str(&format!(" [sha256 {h}]"));
    }
    // A cut list with nothing in it (a variable behind more entries than
    // the kernel looks at) is still said: something may be there.
    let cut = *loader_env_truncated == Some(true);
    if !loader_env.is_empty() || cut {
        let mut words = shell_words(loader_env);
        if cut {
            words.push_str(if words.is_empty() { "..." } else { " ..." });
        }
        s.push_str(&format!(" [loader env {words}]"));
    }
    if *stdio_socket == Some(true) {
        s.push_str(" [stdio is a socket]");
    }
    s
}

/// What a network event says: the destination (with the name it was
/// learned under), and the rule when one decided.
fn network_text(d: &Detail) -> String {
    let Detail::Network {
        op,
        protocol,
        daddr,
        dport,
        result,
        family,
        action,
        rule,
        dns_name,
        answer_cut,
        ..
    } = d
    else {
        return String::new();
    };
    let dest = if *family == "ipv6" {
        format!("[{daddr}]:{dport}")
    } else {
        format!("{daddr}:{dport}")
    };
    let name = dns_name
        .as_deref()
        .map(|n| format!(" {n}"))
        .unwrap_or_default();
    let cut = answer_cut
        .map(|c| format!(" [answer cut: {c}]"))
        .unwrap_or_default();
    match (action, rule) {
        (Some(a), Some(r)) => {
            format!(
                "{op} {protocol} {dest}{name}{cut} {} ({r})",
                a.to_uppercase()
            )
        }
        _ => format!("{op} {protocol} {dest}{name}{cut} ({result})"),
    }
}

/// What a listen or accept says (also used by the reports): where, and
/// for an accept from whom.
pub fn serve_text(d: &Detail) -> String {
    let Detail::Serve {
        op,
        protocol,
        laddr,
        lport,
        daddr,
        dport,
        result,
        ..
    } = d
    else {
        return String::new();
    };
    let local = if laddr.contains(':') {
        format!("[{laddr}]:{lport}")
    } else {
        format!("{laddr}:{lport}")
    };
    match (daddr, dport) {
        (Some(a), Some(p)) if a.contains(':') => {
            format!("{op} {protocol} {local} from [{a}]:{p} ({result})")
        }
        (Some(a), Some(p)) => format!("{op} {protocol} {local} from {a}:{p} ({result})"),
        _ => format!("{op} {protocol} {local} ({result})"),
    }
}

/// What a tamper event says, in one phrase (also used by the reports).
pub fn tamper_text(d: &Detail) -> String {
    let Detail::Tamper {
        op,
        object_type,
        object_id,
        object_name,
        result,
        signal,
        target_pid,
        found,
        suppressed,
        ..
    } = d
    else {
        return String::new();
    };
    if let (Some(n), Some(f)) = (suppressed, found) {
        return format!("{op}: {n} records not reported ({f})");
    }
    let object = format!(
        "{} {} {}",
        object_type.unwrap_or(""),
        object_id.map(|i| i.to_string()).unwrap_or_default(),
        object_name.as_deref().unwrap_or("")
    );
    let object = object.split_whitespace().collect::<Vec<_>>().join(" ");
    match (signal, found) {
        (Some(sig), _) => format!(
            "{sig} -> {object}[{}] ({})",
            target_pid.unwrap_or(0),
            result.as_deref().unwrap_or("")
        ),
        (None, Some(f)) => format!("{op} {object}: {f}"),
        (None, None) => format!("{op} {object} ({})", result.as_deref().unwrap_or("")),
    }
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Ancestor, Severity};

    pub(crate) fn sample() -> Event {
        Event {
            id: 7,
            kind: "file",
            ts: "2026-11-21T10:00:00.000000Z".into(),
            pid: 10,
            ppid: 9,
            uid: 0,
            comm: "cat".into(),
            exe: "/usr/bin/cat".into(),
            ancestors: vec![Ancestor {
                pid: 9,
                comm: "sh".into(),
            }],
            severity: Severity::Critical,
            detail: Detail::File {
                path: "/root/.ssh/id_rsa".into(),
                access: "read",
                result: "ok".into(),
                category: "ssh_key".into(),
                rule: "**/.ssh/id_*".into(),
                resolved: true,
                same_inode_as: None,
                action: None,
                repeats: None,
                old_path: None,
                via: None,
            },
        }
    }

    #[test]
    fn human_line_names_path_process_and_lineage() {
        let line = human(&sample());
        assert!(line.contains("CRITICAL"), "{line}");
        assert!(
            line.contains("read /root/.ssh/id_rsa (ssh_key, ok)"),
            "{line}"
        );
        assert!(line.contains("by cat[10] uid=0 <- sh[9]"), "{line}");
    }

    #[test]
    fn human_line_shows_watched_text_escaped_on_one_line() {
        let mut e = sample();
        e.comm = "c\x1b]0;t\x07".into();
        e.ancestors[0].comm = "p\u{202e}".into();
        if let Detail::File { path, .. } = &mut e.detail {
            *path = "/k\x1b[2J\r\n2026 INFO forged\u{2028}".into();
        }
        let line = human(&e);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.contains("read /k\\x1b[2J\\x0d\\x0a2026 INFO forged\\u{2028} ("),
            "{line}"
        );
        assert!(line.contains("by c\\x1b]0;t\\x07[10]"), "{line}");
        assert!(line.contains("<- p\\u{202e}[9]"), "{line}");

        e.detail = Detail::Process {
            kind: "exec",
            argv: vec!["sh".into(), "a\nb".into(), "\u{85}".into()],
            argv_truncated: None,
            exit_code: None,
            script: None,
            fileless: None,
            dropped: None,
            sha256: None,
            loader_env: Vec::new(),
            loader_env_truncated: None,
            stdio_socket: None,
        };
        let line = human(&e);
        assert!(line.contains("sh 'a\\x0ab' '\\u{85}'"), "{line}");
    }

    #[test]
    fn an_exec_line_says_what_the_event_adds_about_the_program() {
        let mut e = sample();
        e.kind = "process";
        e.exe = "memfd:x".into();
        e.detail = Detail::Process {
            kind: "exec",
            argv: vec!["sh".into(), "-c".into()],
            argv_truncated: Some(true),
            exit_code: None,
            script: Some("/tmp/run.sh".into()),
            fileless: Some(true),
            dropped: Some(true),
            sha256: Some("ab12".into()),
            loader_env: vec!["LD_PRELOAD=/tmp/x y.so".into()],
            loader_env_truncated: Some(true),
            stdio_socket: Some(true),
        };
        let line = human(&e);
        assert!(
            line.contains(
                "exec memfd:x sh -c ... [script /tmp/run.sh] [fileless] [dropped during the run] \
                 [sha256 ab12] [loader env 'LD_PRELOAD=/tmp/x y.so' ...] [stdio is a socket] by"
            ),
            "{line}"
        );
    }

    #[test]
    fn an_exec_whose_loader_list_is_cut_but_empty_still_says_so() {
        let mut e = sample();
        e.kind = "process";
        e.detail = Detail::Process {
            kind: "exec",
            argv: vec!["true".into()],
            argv_truncated: None,
            exit_code: None,
            script: None,
            fileless: None,
            dropped: None,
            sha256: None,
            loader_env: Vec::new(),
            loader_env_truncated: Some(true),
            stdio_socket: None,
        };
        let line = human(&e);
        assert!(line.contains("true [loader env ...] by"), "{line}");
    }

    #[test]
    fn a_long_lineage_shows_four_ancestors_then_an_ellipsis() {
        let mut e = sample();
        e.ancestors = (1..=6)
            .map(|pid| Ancestor {
                pid,
                comm: format!("p{pid}"),
            })
            .collect();
        let line = human(&e);
        assert!(
            line.ends_with("by cat[10] uid=0 <- p1[1] <- p2[2] <- p3[3] <- p4[4] <- ..."),
            "{line}"
        );
        e.ancestors.truncate(4);
        assert!(human(&e).ends_with("<- p4[4]"), "{}", human(&e));
    }

    #[test]
    fn an_empty_or_quoted_argument_is_shown_as_a_shell_would_need_it() {
        assert_eq!(
            shell_words(&["echo".into(), String::new(), "it's".into(), "a=b".into()]),
            r"echo '' 'it'\''s' a=b"
        );
    }

    #[test]
    fn a_network_line_names_the_destination_and_the_rule_that_decided() {
        let mut e = sample();
        e.kind = "network";
        e.detail = Detail::Network {
            op: "connect",
            protocol: "tcp".into(),
            family: "ipv6",
            daddr: "2001:db8::7".into(),
            dport: 443,
            result: "EPERM".into(),
            policy: None,
            action: Some("blocked"),
            rule: Some("network.blocked_domains: evil.test".into()),
            dns_name: Some("x.evil.test".into()),
            answer_cut: None,
        };
        let line = human(&e);
        assert!(
            line.contains(
                "connect tcp [2001:db8::7]:443 x.evil.test BLOCKED (network.blocked_domains: evil.test) by"
            ),
            "{line}"
        );
        if let Detail::Network {
            family,
            daddr,
            action,
            dns_name,
            ..
        } = &mut e.detail
        {
            (*family, *daddr, *action, *dns_name) = ("ipv4", "192.0.2.1".into(), None, None);
        }
        assert!(
            human(&e).contains("connect tcp 192.0.2.1:443 (EPERM) by"),
            "{}",
            human(&e)
        );
    }
}
