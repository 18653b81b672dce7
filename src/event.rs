//! The event: what one kernel record becomes once enriched and judged, its
//! kinds, and the one table of its fields that output, the rule checker and
//! docs/events.md are held to.
//!
//! Longer than 500 lines on purpose: the test that holds the output, the
//! rule checker and the docs to the table (a third of the file) is kept
//! next to the table it guards.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much an event matters; policies and rules say it in these words
/// (lowercase in YAML and in the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::High,
        Severity::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One process in an event's lineage.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ancestor {
    pub pid: u32,
    pub comm: String,
}

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Process,
    File,
    Network,
    Memory,
    Tamper,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Process,
        Kind::File,
        Kind::Network,
        Kind::Memory,
        Kind::Tamper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::File => "file",
            Kind::Network => "network",
            Kind::Memory => "memory",
            Kind::Tamper => "tamper",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Stable within a run (and kept by a record): what signals point at.
    pub id: u64,
    pub ts: String,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub comm: String,
    pub exe: String,
    pub ancestors: Vec<Ancestor>,
    pub severity: Severity,
    #[serde(flatten)]
    pub detail: Detail,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Detail {
    Process {
        kind: &'static str,
        argv: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        argv_truncated: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// A script the exec ran (the executable is its interpreter): the
        /// name exec was given, made absolute, or an interpreter's script
        /// argument.
        #[serde(skip_serializing_if = "Option::is_none")]
        script: Option<String>,
        /// The executable is a file no directory names (a memfd).
        #[serde(skip_serializing_if = "Option::is_none")]
        fileless: Option<bool>,
        /// The executable was written or changed during the run.
        #[serde(skip_serializing_if = "Option::is_none")]
        dropped: Option<bool>,
        /// A dropped executable's SHA-256 (hex), up to a size bound.
        #[serde(skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// The dynamic loader's variables the exec was given
        /// (`LD_PRELOAD=...`, `LD_AUDIT=...`, `LD_LIBRARY_PATH=...`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        loader_env: Vec<String>,
        /// The loader variables may be incomplete: more than the record
        /// holds, a value cut, or an environment longer than the scan.
        #[serde(skip_serializing_if = "Option::is_none")]
        loader_env_truncated: Option<bool>,
        /// The program's stdin or stdout is a socket.
        #[serde(skip_serializing_if = "Option::is_none")]
        stdio_socket: Option<bool>,
    },
    File {
        path: String,
        access: &'static str,
        result: String,
        /// What kind of secret or protected file (the policy's rule kind).
        category: String,
        /// The policy pattern that matched.
        rule: String,
        /// The kernel resolved the opened file (true) or the open failed and
        /// the path is the requested one joined to its directory (false).
        resolved: bool,
        /// A hardlink: the sensitive file this path shares its inode with.
        #[serde(skip_serializing_if = "Option::is_none")]
        same_inode_as: Option<String>,
        /// `killed`: the opener was sent SIGKILL by the kernel (a tripwire).
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<&'static str>,
        /// A report of repeats: this many more identical opens (same
        /// process, file and access) that the kernel counted instead of
        /// sending, since the last report of this open.
        #[serde(skip_serializing_if = "Option::is_none")]
        repeats: Option<u64>,
        /// A link's or rename's other name: the one the file had (`path`
        /// is the new one).
        #[serde(skip_serializing_if = "Option::is_none")]
        old_path: Option<String>,
        /// How the file was reached when it was not an open(2)-family
        /// syscall (`pidfd_getfd`, `io_uring` ...), or the enabling act
        /// reported (`io_uring_setup`, `fanotify_mark` ...).
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<&'static str>,
    },
    Network {
        /// `connect`, or `sendmsg` for a UDP datagram sent to an address
        /// without connect().
        op: &'static str,
        protocol: String,
        family: &'static str,
        daddr: String,
        dport: u16,
        result: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
        /// `blocked` (refused with EPERM) or `would_block` (audit mode).
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<&'static str>,
        /// The policy entry behind the action.
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// The name the address was learned under (DNS answer or resolution);
        /// for `dns_answer`, the name asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        dns_name: Option<String>,
        /// For `dns_answer`: why the kernel could not read every address
        /// record (`too_many_records`, `too_long`, `malformed`).
        #[serde(skip_serializing_if = "Option::is_none")]
        answer_cut: Option<&'static str>,
    },
    Memory {
        kind: &'static str,
        target_pid: u32,
        target_comm: String,
        result: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        target_secret_env: Vec<String>,
        /// For the /proc kinds: which /proc/<pid> file was opened.
        #[serde(skip_serializing_if = "Option::is_none")]
        proc_file: Option<&'static str>,
    },
    /// A socket that sends below the cgroup egress hooks was made: raw,
    /// packet or ICMP ping (a `network` event without a destination).
    Socket {
        /// `socket`.
        op: &'static str,
        /// `ipv4`, `ipv6` or `packet`.
        family: &'static str,
        /// `raw`, `dgram` ... as asked.
        sock_type: String,
        /// The IP protocol asked for, or for a packet socket its ethertype.
        protocol: String,
        result: String,
    },
    /// A server in the job: a listen, or a connection accepted from
    /// another host (a `network` event whose address is the peer's).
    Serve {
        /// `listen` or `accept`.
        op: &'static str,
        protocol: String,
        family: &'static str,
        /// The local address and port listened on or connected to.
        laddr: String,
        lport: u16,
        /// For `accept`: the peer.
        #[serde(skip_serializing_if = "Option::is_none")]
        daddr: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dport: Option<u16>,
        result: String,
    },
    /// Something done to bee-trace itself (pipeline/judge/tamper.rs).
    Tamper {
        /// The bpf(2) command (`map_update_elem`, `link_detach` ...),
        /// `signal`, or `integrity` for a self-check finding.
        op: &'static str,
        /// `bpf`, `signal` or `self_check`.
        source: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        object_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        object_id: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        object_name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target_pid: Option<u32>,
        /// For a self-check finding: what differs from what bee-trace set up.
        #[serde(skip_serializing_if = "Option::is_none")]
        found: Option<String>,
        /// For a flood: the process's records over its share that the
        /// kernel counted instead of sending, since the last report.
        #[serde(skip_serializing_if = "Option::is_none")]
        suppressed: Option<u64>,
    },
}

impl Detail {
    /// The kind of event this detail belongs to.
    pub fn kind(&self) -> Kind {
        match self {
            Detail::Process { .. } => Kind::Process,
            Detail::File { .. } => Kind::File,
            Detail::Network { .. } | Detail::Socket { .. } | Detail::Serve { .. } => Kind::Network,
            Detail::Memory { .. } => Kind::Memory,
            Detail::Tamper { .. } => Kind::Tamper,
        }
    }
}

/// A field's value as a rule condition sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Str,
    Int,
    Bool,
    /// A list of strings; a test holds when it holds for one element.
    List,
}

/// One field of the NDJSON form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    /// The kinds whose events carry it (always or when it applies).
    pub kinds: &'static [Kind],
    /// None: rules cannot compare it (a list of objects).
    pub ty: Option<FieldType>,
    pub doc: &'static str,
}

const ALL: &[Kind] = &Kind::ALL;
const PROCESS: &[Kind] = &[Kind::Process];
const FILE: &[Kind] = &[Kind::File];
const NETWORK: &[Kind] = &[Kind::Network];
const MEMORY: &[Kind] = &[Kind::Memory];
const TAMPER: &[Kind] = &[Kind::Tamper];

const fn f(
    name: &'static str,
    kinds: &'static [Kind],
    ty: Option<FieldType>,
    doc: &'static str,
) -> Field {
    Field {
        name,
        kinds,
        ty,
        doc,
    }
}

use FieldType::{Bool, Int, List, Str};

/// Every event field, once. `Event` and `Detail` emit these; the rule
/// checker knows exactly these; docs/events.md lists exactly these (the
/// tests below hold all three to it).
pub const FIELDS: &[Field] = &[
    f("type", ALL, Some(Str), "the event's kind"),
    f("id", ALL, Some(Int), "the event's number in its run"),
    f(
        "ts",
        ALL,
        Some(Str),
        "RFC 3339 UTC time of the kernel event",
    ),
    f(
        "pid",
        ALL,
        Some(Int),
        "the process (thread group) that acted",
    ),
    f("ppid", ALL, Some(Int), "its parent's pid"),
    f("uid", ALL, Some(Int), "its real uid"),
    f("comm", ALL, Some(Str), "its command name"),
    f("exe", ALL, Some(Str), "its executable's absolute path"),
    f(
        "ancestors",
        ALL,
        None,
        "its lineage, parent first, as {pid, comm}",
    ),
    f(
        "severity",
        ALL,
        Some(Str),
        "info, warning, high or critical",
    ),
    f(
        "kind",
        &[Kind::Process, Kind::Memory],
        Some(Str),
        "what happened: exec/exit, or how memory was reached",
    ),
    f("argv", PROCESS, Some(List), "an exec's arguments"),
    f(
        "argv_truncated",
        PROCESS,
        Some(Bool),
        "true when argv was cut",
    ),
    f("exit_code", PROCESS, Some(Int), "an exit's status"),
    f(
        "loader_env",
        PROCESS,
        Some(List),
        "an exec's LD_PRELOAD, LD_AUDIT and LD_LIBRARY_PATH, as NAME=value",
    ),
    f(
        "loader_env_truncated",
        PROCESS,
        Some(Bool),
        "true when loader variables may be missing or cut",
    ),
    f(
        "stdio_socket",
        PROCESS,
        Some(Bool),
        "true when an exec's stdin or stdout is a socket",
    ),
    f("path", FILE, Some(Str), "the opened file's real path"),
    f("access", FILE, Some(Str), "read or write; link or rename"),
    f(
        "result",
        &[Kind::File, Kind::Network, Kind::Memory, Kind::Tamper],
        Some(Str),
        "ok, or the errno's name (and the verdicts' words)",
    ),
    f(
        "category",
        FILE,
        Some(Str),
        "what kind of file the policy says",
    ),
    f(
        "rule",
        &[Kind::File, Kind::Network],
        Some(Str),
        "the policy entry that matched",
    ),
    f(
        "resolved",
        FILE,
        Some(Bool),
        "the path is the opened file's",
    ),
    f(
        "same_inode_as",
        FILE,
        Some(Str),
        "a hardlink's sensitive file",
    ),
    f(
        "action",
        &[Kind::File, Kind::Network],
        Some(Str),
        "what the kernel did: killed, blocked, would_block",
    ),
    f(
        "op",
        &[Kind::Network, Kind::Tamper],
        Some(Str),
        "the operation",
    ),
    f(
        "protocol",
        NETWORK,
        Some(Str),
        "tcp, udp or another protocol",
    ),
    f("family", NETWORK, Some(Str), "ipv4, ipv6 or packet"),
    f("daddr", NETWORK, Some(Str), "destination address"),
    f("dport", NETWORK, Some(Int), "destination port"),
    f(
        "policy",
        NETWORK,
        Some(Str),
        "the verdict in the original tool's words",
    ),
    f(
        "dns_name",
        NETWORK,
        Some(Str),
        "the name the address was learned under",
    ),
    f(
        "answer_cut",
        NETWORK,
        Some(Str),
        "a DNS answer not fully learned: too_many_records, too_long or malformed",
    ),
    f(
        "target_pid",
        &[Kind::Memory, Kind::Tamper],
        Some(Int),
        "the process acted on",
    ),
    f("target_comm", MEMORY, Some(Str), "its command name"),
    f("request", MEMORY, Some(Str), "a ptrace request's name"),
    f(
        "target_secret_env",
        MEMORY,
        Some(List),
        "names of the target's secret environment variables",
    ),
    f(
        "source",
        TAMPER,
        Some(Str),
        "bpf, signal, self_check, share or watchdog",
    ),
    f(
        "object_type",
        TAMPER,
        Some(Str),
        "map, prog, link or process",
    ),
    f("object_id", TAMPER, Some(Int), "the object's kernel id"),
    f("object_name", TAMPER, Some(Str), "the object's name"),
    f("signal", TAMPER, Some(Str), "SIGKILL or SIGSTOP"),
    f(
        "found",
        TAMPER,
        Some(Str),
        "what a self-check found changed",
    ),
    f(
        "repeats",
        FILE,
        Some(Int),
        "identical opens the kernel counted since the last report of this one",
    ),
    f(
        "suppressed",
        TAMPER,
        Some(Int),
        "a flood's records over the process's share, counted not sent",
    ),
    f("old_path", FILE, Some(Str), "a link's or rename's old name"),
    f(
        "script",
        PROCESS,
        Some(Str),
        "the script an exec ran through its interpreter",
    ),
    f(
        "fileless",
        PROCESS,
        Some(Bool),
        "the executable is a file no directory names (memfd)",
    ),
    f(
        "dropped",
        PROCESS,
        Some(Bool),
        "the executable was written or changed during the run",
    ),
    f(
        "sha256",
        PROCESS,
        Some(Str),
        "a dropped executable's SHA-256",
    ),
    f(
        "proc_file",
        MEMORY,
        Some(Str),
        "the /proc/<pid> file opened (mem, maps, smaps ...)",
    ),
    f(
        "sock_type",
        NETWORK,
        Some(Str),
        "a socket event's type: raw, dgram ...",
    ),
    f(
        "laddr",
        NETWORK,
        Some(Str),
        "a listen's or accept's local address",
    ),
    f(
        "lport",
        NETWORK,
        Some(Int),
        "a listen's or accept's local port",
    ),
    f(
        "via",
        FILE,
        Some(Str),
        "how the file was reached when not by open(2)",
    ),
];

/// The fields events of `kind` carry, in table order.
pub fn fields_of(kind: Kind) -> impl Iterator<Item = &'static Field> {
    FIELDS.iter().filter(move |f| f.kinds.contains(&kind))
}

/// A field of `kind` by name.
pub fn field(kind: Kind, name: &str) -> Option<&'static Field> {
    fields_of(kind).find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// One event of each detail, every optional field set: together they
    /// emit every field an event can have. A field added to `Detail` stops
    /// this compiling until it is set here too.
    fn every_detail() -> Vec<Detail> {
        vec![
            Detail::Process {
                kind: "exec",
                argv: vec!["sh".into()],
                argv_truncated: Some(true),
                exit_code: Some(0),
                script: Some("/tmp/x.sh".into()),
                fileless: Some(true),
                dropped: Some(true),
                sha256: Some("ba7816bf".into()),
                loader_env: vec!["LD_PRELOAD=/tmp/x.so".into()],
                loader_env_truncated: Some(true),
                stdio_socket: Some(true),
            },
            Detail::File {
                path: "/root/.ssh/id_rsa".into(),
                access: "read",
                result: "ok".into(),
                category: "ssh_key".into(),
                rule: "**/.ssh/id_*".into(),
                resolved: true,
                same_inode_as: Some("/root/.ssh/id_ed25519".into()),
                action: Some("killed"),
                repeats: Some(41),
                old_path: Some("/tmp/k".into()),
                via: Some("pidfd_getfd"),
            },
            Detail::Network {
                op: "connect",
                protocol: "tcp".into(),
                family: "ipv4",
                daddr: "198.51.100.3".into(),
                dport: 443,
                result: "EPERM".into(),
                policy: Some("blocked_ip".into()),
                action: Some("blocked"),
                rule: Some("network.blocked_ips: 198.51.100.0/24".into()),
                dns_name: Some("evil.example".into()),
                answer_cut: Some("too_many_records"),
            },
            Detail::Memory {
                kind: "proc_environ",
                target_pid: 2,
                target_comm: "runner".into(),
                result: "ok".into(),
                request: Some("PTRACE_ATTACH".into()),
                target_secret_env: vec!["GITHUB_TOKEN".into()],
                proc_file: Some("environ"),
            },
            Detail::Socket {
                op: "socket",
                family: "packet",
                sock_type: "raw".into(),
                protocol: "ethertype-0x0003".into(),
                result: "ok".into(),
            },
            Detail::Serve {
                op: "accept",
                protocol: "tcp".into(),
                family: "ipv4",
                laddr: "10.0.0.2".into(),
                lport: 4444,
                daddr: Some("198.51.100.9".into()),
                dport: Some(40000),
                result: "ok".into(),
            },
            Detail::Tamper {
                op: "integrity",
                source: "self_check",
                object_type: Some("map"),
                object_id: Some(5),
                object_name: Some("file_filter".into()),
                result: Some("ok".into()),
                signal: Some("SIGKILL"),
                target_pid: Some(3),
                found: Some("no longer block 198.51.100.3/32".into()),
                suppressed: Some(7),
            },
        ]
    }

    fn sample(detail: Detail) -> Event {
        Event {
            kind: detail.kind().as_str(),
            id: 1,
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
            severity: Severity::High,
            detail,
        }
    }

    type Known = BTreeSet<(Kind, String)>;

    /// (kind, field) for every key the samples serialise to.
    fn emitted() -> Known {
        let mut out = Known::new();
        for d in every_detail() {
            let kind = d.kind();
            let v = serde_json::to_value(sample(d)).unwrap();
            for k in v.as_object().unwrap().keys() {
                out.insert((kind, k.clone()));
            }
        }
        out
    }

    fn table() -> Known {
        Kind::ALL
            .into_iter()
            .flat_map(|k| fields_of(k).map(move |f| (k, f.name.to_string())))
            .collect()
    }

    /// (kind, field) for every field docs/events.md lists: the first cell
    /// of each table row under `## Common fields` (every kind) and under
    /// each ``## `kind` `` heading.
    fn documented(doc: &str) -> Known {
        let mut out = Known::new();
        let mut kinds: Vec<Kind> = Vec::new();
        for line in doc.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                kinds = if h == "Common fields" {
                    Kind::ALL.to_vec()
                } else {
                    Kind::from_name(h.trim_matches('`')).into_iter().collect()
                };
                continue;
            }
            let Some(row) = line.strip_prefix("| `") else {
                continue;
            };
            let cell = row.split(" |").next().unwrap_or("");
            for name in format!("`{cell}").split(',') {
                let name = name.trim().trim_matches('`');
                for k in &kinds {
                    out.insert((*k, name.to_string()));
                }
            }
        }
        out
    }

    fn missing(a: &Known, b: &Known) -> Vec<String> {
        a.difference(b)
            .map(|(k, n)| format!("{}.{n}", k.as_str()))
            .collect()
    }

    #[test]
    fn every_detail_is_of_its_kind_and_named_by_it() {
        for d in every_detail() {
            assert_eq!(Kind::from_name(d.kind().as_str()), Some(d.kind()));
        }
        // Every kind has a detail (network has two: a connection, a socket).
        let kinds: BTreeSet<Kind> = every_detail().iter().map(Detail::kind).collect();
        assert_eq!(kinds.len(), Kind::ALL.len());
    }

    #[test]
    fn the_output_emits_exactly_the_table() {
        let (out, table) = (emitted(), table());
        assert_eq!(missing(&out, &table), Vec::<String>::new(), "not in FIELDS");
        assert_eq!(missing(&table, &out), Vec::<String>::new(), "never emitted");
    }

    #[test]
    fn docs_events_md_lists_exactly_the_table() {
        let doc = documented(include_str!("../docs/events.md"));
        let table = table();
        assert_eq!(missing(&table, &doc), Vec::<String>::new(), "undocumented");
        assert_eq!(missing(&doc, &table), Vec::<String>::new(), "not in FIELDS");
    }

    #[test]
    fn the_doc_parser_sees_a_dropped_row() {
        let doc = include_str!("../docs/events.md");
        let cut = doc.replace("| `argv_truncated` |", "| argv_truncated |");
        assert!(documented(doc).contains(&(Kind::Process, "argv_truncated".into())));
        assert!(!documented(&cut).contains(&(Kind::Process, "argv_truncated".into())));
    }

    /// A condition on `name` of the field's type, for the rule checker.
    fn condition(kind: Kind, name: &str, ty: FieldType) -> String {
        let test = match ty {
            FieldType::Str => "== \\\"x\\\"",
            FieldType::Int => "== 1",
            FieldType::Bool => "== true",
            FieldType::List => "contains \\\"x\\\"",
        };
        format!("has({}).where({name} {test})", kind.as_str())
    }

    fn compiles(cond: &str) -> Result<(), crate::rules::RuleError> {
        let text = format!(
            "rules:\n  - name: r\n    severity: high\n    description: d\n    condition: \"{cond}\"\n"
        );
        crate::rules::compile(&[crate::rules::Source {
            name: "t.yml".into(),
            text,
        }])
        .map(|_| ())
    }

    #[test]
    fn the_rule_checker_knows_every_field_rules_can_select() {
        // Rules select process, file, network and memory events; tamper
        // events are for people, not for rules.
        let selectable = [Kind::Process, Kind::File, Kind::Network, Kind::Memory];
        for kind in selectable {
            for fd in fields_of(kind) {
                let ty = fd.ty.unwrap_or(FieldType::Str);
                let r = compiles(&condition(kind, fd.name, ty));
                match fd.ty {
                    Some(_) => r.unwrap_or_else(|e| panic!("{}.{}: {e}", kind.as_str(), fd.name)),
                    None => assert!(r.is_err(), "{} is not comparable", fd.name),
                }
            }
        }
        let e = compiles(&condition(Kind::Tamper, "op", FieldType::Str)).unwrap_err();
        assert!(
            e.message.contains("process, file, network or memory"),
            "{e}"
        );
        // And nothing outside the table.
        let e = compiles("has(process).where(argv_cut == true)").unwrap_err();
        assert!(e.message.contains("argv_truncated"), "lists the table: {e}");
    }
}
