//! The pipeline judged through its front door, with records as the rings
//! give them.

use super::judge::file::FMODE_WRITE;
use super::*;
use crate::abi::{FileEvent, Header, NetEvent, PATH_BUF};
use crate::event::{Detail, Severity};
use crate::kernel::Egress;
use crate::pipeline::proctable::ProcTable;
use crate::policy::Policy;

fn header(kind: u32, pid: u32, comm: &str) -> Header {
    let mut h = Header {
        kind,
        pid,
        tid: pid,
        ppid: 1,
        uid: 0,
        ..Default::default()
    };
    h.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    h
}

fn file_event(path_leaf_first: &[u8], ret: i32, fmode: u32, comm: &str) -> FileEvent {
    let mut e = FileEvent {
        hdr: header(abi::EV_FILE, 4_000_000, comm),
        ret,
        flags: 0,
        fmode,
        path_flags: 0,
        dev: 1,
        ino: 2,
        path_len: path_leaf_first.len() as u16,
        path_depth: 3,
        req_len: 0,
        layout: abi::PATH_RESOLVED,
        syscall: 1,
        action: 0,
        ftype: 0,
        new_off: 0,
        igen: 0,
        path: [0; PATH_BUF],
    };
    e.path[..path_leaf_first.len()].copy_from_slice(path_leaf_first);
    e
}

fn with_egress(pol: Policy, show: bool, command: Option<String>) -> Pipeline {
    let plan = crate::policy::network::Plan::new(&pol, &[]).unwrap();
    Pipeline::new(
        pol,
        ProcTable::default(),
        show,
        command,
        Egress::new(plan, None),
    )
}

fn pipeline() -> Pipeline {
    with_egress(Policy::default_policy(), true, None)
}

#[test]
fn judges_a_key_read_by_path_and_program() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    let ev = p
        .handle(
            Raw::File(Box::new(file_event(b"id_rsa\0.ssh\0root\0", 3, 1, "cat"))),
            &mut fx,
        )
        .unwrap();
    assert_eq!(ev.severity, Severity::Critical);
    match &ev.detail {
        Detail::File {
            path,
            access,
            result,
            category,
            ..
        } => {
            assert_eq!(path, "/root/.ssh/id_rsa");
            assert_eq!(*access, "read");
            assert_eq!(result, "ok");
            assert_eq!(category, "ssh_key");
        }
        d => panic!("{d:?}"),
    }
    let ev = p
        .handle(
            Raw::File(Box::new(file_event(b"id_rsa\0.ssh\0root\0", 3, 1, "ssh"))),
            &mut fx,
        )
        .unwrap();
    assert_eq!(
        ev.severity,
        Severity::Critical,
        "a process named ssh is not the ssh program"
    );
    let mut public = file_event(b"id_rsa.pub\0.ssh\0root\0", 3, 1, "cat");
    public.ino = 3;
    assert!(p.handle(Raw::File(Box::new(public)), &mut fx).is_none());
    assert_eq!(p.stats.filtered, 1);
    let watched = fx.iter().filter(|e| matches!(e, Effect::WatchInode(_)));
    assert_eq!(watched.count(), 1, "one inode learned, once");

    // The same inode under a name no rule matches: a hardlink.
    let ev = p
        .handle(
            Raw::File(Box::new(file_event(b"innocent\0tmp\0", 3, 1, "cat"))),
            &mut fx,
        )
        .unwrap();
    match &ev.detail {
        Detail::File {
            path,
            same_inode_as,
            category,
            ..
        } => {
            assert_eq!(path, "/tmp/innocent");
            assert_eq!(same_inode_as.as_deref(), Some("/root/.ssh/id_rsa"));
            assert_eq!(category, "ssh_key");
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn a_kill_is_never_filtered_and_is_never_downgraded() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    // The kernel killed the opener of an armed inode no rule names.
    let mut e = file_event(b"notes\0tmp\0", 3, 1, "ssh");
    e.action = abi::FILE_KILLED;
    let ev = p.handle(Raw::File(Box::new(e)), &mut fx).unwrap();
    assert_eq!(ev.severity, Severity::Critical);
    assert!(matches!(
        &ev.detail,
        Detail::File { action: Some("killed"), category, .. } if category == "tripwire"
    ));
    // An expected program killed on a key is still critical.
    let mut e = file_event(b"id_rsa\0.ssh\0root\0", 3, 1, "ssh");
    e.ino = 9;
    e.action = abi::FILE_KILLED;
    let ev = p.handle(Raw::File(Box::new(e)), &mut fx).unwrap();
    assert_eq!(ev.severity, Severity::Critical);
}

#[test]
fn write_opens_of_protected_files_are_writes() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    assert!(p
        .handle(
            Raw::File(Box::new(file_event(b"passwd\0etc\0", 3, 1, "cat"))),
            &mut fx
        )
        .is_none());
    let ev = p
        .handle(
            Raw::File(Box::new(file_event(
                b"passwd\0etc\0",
                3,
                FMODE_WRITE | 1,
                "tee",
            ))),
            &mut fx,
        )
        .unwrap();
    assert!(matches!(
        ev.detail,
        Detail::File {
            access: "write",
            ..
        }
    ));
}

#[test]
fn network_events_carry_destination_and_policy() {
    let mut pol = Policy::from_yaml(
        "network:\n  blocked_ips: [\"10.9.0.0/16\"]\n",
        std::path::Path::new("t"),
    )
    .unwrap();
    pol.monitored_ports.clear();
    let mut p = with_egress(pol, false, Some("curl".into()));
    let mut fx = Vec::new();
    let mut n = NetEvent {
        hdr: header(abi::EV_NET, 4_000_001, "curl"),
        ret: -111,
        family: 2,
        dport: 443,
        protocol: 6,
        sock_type: 1,
        ..Default::default()
    };
    n.daddr[..4].copy_from_slice(&[10, 8, 1, 2]);
    let ev = p.handle(Raw::Net(n), &mut fx).unwrap();
    assert_eq!(ev.severity, Severity::Info);
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["daddr"], "10.8.1.2");
    assert_eq!(v["op"], "connect");
    assert_eq!(v["protocol"], "tcp");
    assert_eq!(v["result"], "ECONNREFUSED");
    assert!(v.get("action").is_none());

    // The egress hook refuses a connect into the blocked CIDR ...
    let mut g = abi::EgressEvent {
        hdr: header(abi::EV_EGRESS, 4_000_001, "curl"),
        rule: p.egress.plan().block[0].1,
        family: 2,
        dport: 443,
        protocol: 6,
        action: abi::ACT_BLOCKED,
        hook: abi::HOOK_CONNECT,
        ..Default::default()
    };
    g.daddr[..4].copy_from_slice(&[10, 9, 1, 2]);
    let ev = p.handle(Raw::Egress(g), &mut fx).unwrap();
    assert_eq!(ev.severity, Severity::High);
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["action"], "blocked");
    assert_eq!(v["result"], "EPERM");
    assert_eq!(v["rule"], "network.blocked_ips: 10.9.0.0/16");
    assert_eq!(v["policy"], "blocked_ip");
    // ... and the tracepoint's record of the same call is folded into it.
    n.hdr = header(abi::EV_NET, 4_000_001, "curl");
    n.ret = -1;
    n.daddr[..4].copy_from_slice(&[10, 9, 1, 2]);
    assert!(p.handle(Raw::Net(n), &mut fx).is_none());

    n.hdr = header(abi::EV_NET, 4_000_001, "wget");
    n.daddr[..4].copy_from_slice(&[10, 7, 1, 2]);
    assert!(
        p.handle(Raw::Net(n), &mut fx).is_none(),
        "--command filters by comm"
    );
}

#[test]
fn monitored_ports_filter_what_is_seen_but_never_a_verdict() {
    let pol = Policy::from_yaml(
        "network:\n  blocked_ips: [\"10.9.0.0/16\"]\n  monitored_ports: [443]\n  alert_on_any_connection: true\n",
        std::path::Path::new("t"),
    )
    .unwrap();
    assert_eq!(pol.monitored_ports, vec![443]);
    let mut p = with_egress(pol, true, None);
    let mut fx = Vec::new();
    let connect = |dport: u16, last: u8| {
        let mut n = NetEvent {
            hdr: header(abi::EV_NET, 4_000_003, "curl"),
            family: 2,
            dport,
            protocol: 6,
            sock_type: 1,
            ..Default::default()
        };
        n.daddr[..4].copy_from_slice(&[10, 8, 1, last]);
        Raw::Net(n)
    };
    // A connect to a monitored port is an alert, as every connection is asked to be ...
    let ev = p.handle(connect(443, 1), &mut fx).unwrap();
    assert_eq!(ev.severity, Severity::Warning);
    // ... and one to another port is filtered, counted, not shown.
    assert!(p.handle(connect(80, 2), &mut fx).is_none());
    assert_eq!(p.stats.filtered, 1);

    let egress = |dport: u16, action: u8, hook: u8, rule: u32| {
        let mut g = abi::EgressEvent {
            hdr: header(abi::EV_EGRESS, 4_000_003, "curl"),
            rule,
            family: 2,
            dport,
            protocol: 17,
            action,
            hook,
            ..Default::default()
        };
        g.daddr[..4].copy_from_slice(&[10, 9, 1, 2]);
        Raw::Egress(g)
    };
    // An observed send to an unmonitored port is filtered too ...
    assert!(p
        .handle(egress(53, abi::ACT_OBSERVED, abi::HOOK_SENDMSG, 0), &mut fx)
        .is_none());
    assert_eq!(p.stats.filtered, 2);
    // ... one to a monitored port is a warning, a send, not a connect ...
    let ev = p
        .handle(
            egress(443, abi::ACT_OBSERVED, abi::HOOK_SENDMSG, 0),
            &mut fx,
        )
        .unwrap();
    assert_eq!(ev.severity, Severity::Warning);
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["op"], "sendmsg");
    assert_eq!(v["result"], "sent");
    assert_eq!(v["protocol"], "udp");
    // ... but a refusal is never filtered, whatever its port.
    let rule = p.egress.plan().block[0].1;
    let ev = p
        .handle(
            egress(53, abi::ACT_BLOCKED, abi::HOOK_SENDMSG, rule),
            &mut fx,
        )
        .unwrap();
    assert_eq!(ev.severity, Severity::High);
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(
        (v["op"].as_str(), v["action"].as_str()),
        (Some("sendmsg"), Some("blocked"))
    );
    assert_eq!(p.stats.filtered, 2);
}

#[test]
fn a_dns_answer_is_an_effect_not_a_map_write() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    let mut d = abi::DnsEvent {
        hdr: header(abi::EV_DNS, 4_000_002, "curl"),
        naddrs: 1,
        ..Default::default()
    };
    let wire = b"\x04evil\x07example\x00";
    d.name[..wire.len()].copy_from_slice(wire);
    d.name_len = wire.len() as u16;
    d.family[0] = 4;
    d.addr[0][..4].copy_from_slice(&[198, 51, 100, 3]);
    d.ttl[0] = 60;
    assert!(p.handle(Raw::Dns(Box::new(d)), &mut fx).is_none());
    let ip: IpAddr = [198, 51, 100, 3].into();
    assert_eq!(
        fx,
        vec![Effect::LearnAddr {
            name: "evil.example".into(),
            ip,
            ttl: Duration::from_secs(60),
        }]
    );
    // Nothing is learned until the caller applies it.
    assert_eq!(p.egress.dns_name(ip), None);
    let mut resolved = Vec::new();
    p.take_resolved(&mut resolved);
    assert_eq!(resolved, vec![Effect::ExpireLearned]);
}

/// The last record of an answer for `wire` from 198.51.100.2, cut.
fn cut_dns(wire: &[u8], rule: u32, cut: u8, action: u8) -> Raw {
    let mut d = abi::DnsEvent {
        hdr: header(abi::EV_DNS, 4_000_004, "python3"),
        rule_hit: 1,
        rule,
        cut,
        action,
        server_family: 4,
        ..Default::default()
    };
    d.server[..4].copy_from_slice(&[198, 51, 100, 2]);
    d.name[..wire.len()].copy_from_slice(wire);
    d.name_len = wire.len() as u16;
    Raw::Dns(Box::new(d))
}

#[test]
fn a_cut_answer_for_a_blocked_name_is_an_event_saying_it_was_dropped() {
    let pol = Policy::from_yaml(
        "network:\n  mode: block\n  blocked_domains: [evil.test]\n  allowed_endpoints: [\"*.good.test\"]\n",
        std::path::Path::new("t"),
    )
    .unwrap();
    let mut p = with_egress(pol, true, None);
    let rule = p
        .egress
        .plan()
        .domains
        .iter()
        .find(|d| d.name == "evil.test")
        .unwrap()
        .rule;
    let mut fx = Vec::new();
    let wire = b"\x01x\x04evil\x04test\x00";
    let ev = p
        .handle(
            cut_dns(wire, rule, abi::DNS_CUT_COUNT, abi::ACT_BLOCKED),
            &mut fx,
        )
        .unwrap();
    assert_eq!(ev.severity, Severity::High);
    assert_eq!((ev.pid, ev.comm.as_str()), (4_000_004, "python3"));
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["type"], "network");
    assert_eq!(v["op"], "dns_answer");
    assert_eq!(v["daddr"], "198.51.100.2");
    assert_eq!(v["dport"], 53);
    assert_eq!(v["dns_name"], "x.evil.test");
    assert_eq!(v["answer_cut"], "too_many_records");
    assert_eq!(v["action"], "blocked");
    assert_eq!(v["result"], "dropped");
    assert_eq!(v["rule"], "network.blocked_domains: evil.test");
    assert_eq!(v["policy"], "blocked_domain:evil.test");
    assert!(fx.is_empty(), "no address to learn: {fx:?}");

    let ev = p
        .handle(
            cut_dns(wire, rule, abi::DNS_CUT_SIZE, abi::ACT_WOULD_BLOCK),
            &mut fx,
        )
        .unwrap();
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(
        (&v["answer_cut"], &v["action"], &v["result"]),
        (
            &"too_long".into(),
            &"would_block".into(),
            &"permitted".into()
        )
    );

    // Under an allow rule the rest is refused anyway: said, not a verdict.
    let ev = p
        .handle(
            cut_dns(b"\x03cdn\x04good\x04test\x00", 0, abi::DNS_CUT_MALFORMED, 0),
            &mut fx,
        )
        .unwrap();
    assert_eq!(ev.severity, Severity::Warning);
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(
        (&v["answer_cut"], &v["result"]),
        (&"malformed".into(), &"ok".into())
    );
    assert!(v.get("action").is_none() && v.get("rule").is_none(), "{v}");
}

#[test]
fn a_cut_answer_no_rule_covers_or_a_whole_one_is_no_event() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    let Raw::Dns(mut d) = cut_dns(b"\x04some\x04test\x00", 0, abi::DNS_CUT_COUNT, 0) else {
        unreachable!()
    };
    d.rule_hit = 0;
    assert!(p.handle(Raw::Dns(d.clone()), &mut fx).is_none());
    d.rule_hit = 1;
    d.cut = abi::DNS_WHOLE;
    assert!(p.handle(Raw::Dns(d), &mut fx).is_none());
}

fn mem_event(pid: u32, kind: u32, target: u32) -> abi::MemEvent {
    abi::MemEvent {
        hdr: header(abi::EV_MEM, pid, "gdb"),
        kind,
        target_pid: target,
        request: 16,
        ret: 0,
        target_tgid: target,
        fmode: 0,
        target_comm: [0; abi::COMM_LEN],
    }
}

#[test]
fn a_debugger_of_its_own_descendant_is_judged_milder_than_of_a_stranger() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    let me = std::process::id();
    // pid 1 is an ancestor of this test; the test is not an ancestor of pid 1.
    for (kind, name, own, stranger) in [
        (
            abi::MEM_PTRACE,
            "ptrace",
            Severity::Warning,
            Severity::Critical,
        ),
        (
            abi::MEM_VM_READV,
            "process_vm_readv",
            Severity::High,
            Severity::Critical,
        ),
        (
            abi::MEM_VM_WRITEV,
            "process_vm_writev",
            Severity::Critical,
            Severity::Critical,
        ),
        (
            abi::MEM_PROC_MEM,
            "proc_mem",
            Severity::High,
            Severity::Critical,
        ),
        (
            abi::MEM_PROC_MAPS,
            "proc_maps",
            Severity::Warning,
            Severity::Warning,
        ),
    ] {
        let ev = p.handle(Raw::Mem(mem_event(1, kind, me)), &mut fx).unwrap();
        assert_eq!(ev.severity, own, "{name} of a descendant");
        let Detail::Memory {
            kind: k,
            target_pid,
            target_comm,
            request,
            ..
        } = &ev.detail
        else {
            panic!("{:?}", ev.detail)
        };
        assert_eq!((*k, *target_pid), (name, me));
        // The kernel sent no name: the table's (from /proc) is used.
        assert_eq!(
            *target_comm,
            std::fs::read_to_string("/proc/self/comm")
                .unwrap()
                .trim_end()
        );
        assert_eq!(
            request.as_deref(),
            (kind == abi::MEM_PTRACE).then_some("PTRACE_ATTACH")
        );
        let ev = p.handle(Raw::Mem(mem_event(me, kind, 1)), &mut fx).unwrap();
        assert_eq!(ev.severity, stranger, "{name} of a stranger");
    }
    assert!(
        p.handle(Raw::Mem(mem_event(me, 99, 1)), &mut fx).is_none(),
        "an unknown kind is no event"
    );
}

#[test]
fn memory_access_is_information_only_when_the_policy_says_so() {
    let pol = Policy::from_yaml(
        "memory:\n  alert_on_memory_access: false\n",
        std::path::Path::new("t"),
    )
    .unwrap();
    let mut p = with_egress(pol, true, None);
    let mut fx = Vec::new();
    let me = std::process::id();
    let ev = p
        .handle(Raw::Mem(mem_event(me, abi::MEM_VM_WRITEV, 1)), &mut fx)
        .unwrap();
    assert_eq!(ev.severity, Severity::Info);
}

#[test]
fn a_thread_unknown_by_its_group_is_named_from_its_own_proc_entry() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    let me = std::process::id();
    let mut e = mem_event(1, abi::MEM_PROC_MAPS, me);
    // A thread group id the table cannot find (above pid_max).
    e.target_tgid = 4_000_000_000;
    let ev = p.handle(Raw::Mem(e), &mut fx).unwrap();
    let Detail::Memory { target_comm, .. } = &ev.detail else {
        panic!("{:?}", ev.detail)
    };
    assert_eq!(
        *target_comm,
        std::fs::read_to_string("/proc/self/comm")
            .unwrap()
            .trim_end()
    );
}

#[test]
fn a_refused_open_is_a_write_when_it_asked_to_write_or_truncate() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    let refused = |flags: i32| {
        let mut e = file_event(b"passwd\0etc\0", -13, 0, "sh");
        e.flags = flags as _;
        Raw::File(Box::new(e))
    };
    // The kernel says nothing of what a refused open would have been
    // allowed: its flags say what was asked.
    for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC] {
        let ev = p.handle(refused(flags), &mut fx).unwrap();
        let Detail::File { access, result, .. } = &ev.detail else {
            panic!("{:?}", ev.detail)
        };
        assert_eq!(
            (*access, result.as_str()),
            ("write", "EACCES"),
            "{flags:#o}"
        );
    }
    assert!(
        p.handle(refused(libc::O_RDONLY), &mut fx).is_none(),
        "a refused read of /etc/passwd is no finding"
    );
}

#[test]
fn backstop_verdicts_and_raw_sockets_are_named_by_their_path() {
    let mut pol = Policy::from_yaml(
        "network:\n  blocked_ips: [\"10.9.0.0/16\"]\n",
        std::path::Path::new("t"),
    )
    .unwrap();
    pol.monitored_ports.clear();
    let mut p = with_egress(pol, false, None);
    let mut fx = Vec::new();
    let rule = p.egress.plan().block[0].1;
    let verdict = |hook: u8, action: u8, protocol: u16| {
        let mut g = abi::EgressEvent {
            hdr: header(abi::EV_EGRESS, 4_000_007, "python3"),
            rule,
            family: 2,
            protocol,
            action,
            hook,
            ..Default::default()
        };
        g.daddr[..4].copy_from_slice(&[10, 9, 0, 3]);
        Raw::Egress(g)
    };
    let seen = |p: &mut Pipeline, fx: &mut Vec<_>, raw| {
        serde_json::to_value(p.handle(raw, fx).unwrap()).unwrap()
    };
    // A packet dropped by a backstop, of a raw socket or at a device.
    for hook in [abi::HOOK_PACKET, abi::HOOK_DEVICE] {
        let v = seen(&mut p, &mut fx, verdict(hook, abi::ACT_BLOCKED, 1));
        assert_eq!(
            (&v["op"], &v["result"]),
            (&"packet".into(), &"dropped".into()),
            "{v}"
        );
        assert_eq!(v["protocol"], "icmp");
        assert_eq!(v["severity"], "high");
    }
    // A raw socket's connect: it succeeded, its packets are dropped.
    let v = seen(
        &mut p,
        &mut fx,
        verdict(abi::HOOK_RAW_CONNECT, abi::ACT_BLOCKED, 136),
    );
    assert_eq!(
        (&v["op"], &v["result"]),
        (&"connect".into(), &"packets_dropped".into()),
        "{v}"
    );
    assert_eq!(v["protocol"], "udplite");
    let v = seen(
        &mut p,
        &mut fx,
        verdict(abi::HOOK_RAW_CONNECT, abi::ACT_WOULD_BLOCK, 1),
    );
    assert_eq!(
        (&v["action"], &v["result"]),
        (&"would_block".into(), &"permitted".into())
    );
    // A connect not made by connect(2), seen by the connect hook.
    let v = seen(
        &mut p,
        &mut fx,
        verdict(abi::HOOK_CONNECT, abi::ACT_OBSERVED, 6),
    );
    assert_eq!(
        (&v["op"], &v["result"]),
        (&"connect".into(), &"attempted".into()),
        "{v}"
    );
    assert!(v.get("action").is_none());

    // Raw and packet sockets made, and one refused.
    let sock = |family: u16, sock_type: u16, protocol: u16, ret: i32| {
        Raw::Socket(NetEvent {
            hdr: header(abi::EV_SOCKET, 4_000_007, "python3"),
            ret,
            family,
            sock_type,
            protocol,
            ..Default::default()
        })
    };
    let v = seen(&mut p, &mut fx, sock(17, 3, 0x0300, 5));
    assert_eq!(v["op"], "socket");
    assert_eq!(v["family"], "packet");
    assert_eq!(v["protocol"], "ethertype-0x0003");
    assert_eq!(v["sock_type"], "raw");
    assert_eq!(v["result"], "ok");
    assert_eq!(v["severity"], "warning");
    assert!(v.get("daddr").is_none());
    let v = seen(&mut p, &mut fx, sock(10, 3, 255, -1));
    assert_eq!(
        (&v["family"], &v["protocol"]),
        (&"ipv6".into(), &"raw".into())
    );
    assert_eq!(v["result"], "EPERM");
    // A family bee-trace does not know is counted, not shown.
    assert!(p.handle(sock(1, 3, 0, 3), &mut fx).is_none());
}
