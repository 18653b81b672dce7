//! Inode knowledge judged through the pipeline's front door: reused inode
//! numbers, links and renames.

use std::os::unix::fs::MetadataExt;

use crate::abi::{self, FileEvent, Header, Raw, PATH_BUF};
use crate::event::{Detail, Event, Severity};
use crate::kernel::{kernel_dev, Egress, Ident};
use crate::pipeline::proctable::ProcTable;
use crate::pipeline::{Effect, Pipeline};
use crate::policy::Policy;

const REG: u8 = 8;
const DIR: u8 = 4;

fn pipeline() -> Pipeline {
    let pol = Policy::default_policy();
    let plan = crate::policy::network::Plan::new(&pol, &[]).unwrap();
    Pipeline::new(
        pol,
        ProcTable::default(),
        true,
        None,
        Egress::new(plan, None),
    )
}

fn record(pid: u32) -> FileEvent {
    let mut hdr = Header {
        kind: abi::EV_FILE,
        pid,
        tid: pid,
        ppid: 1,
        ..Default::default()
    };
    hdr.comm[..7].copy_from_slice(b"python3");
    FileEvent {
        hdr,
        ret: 3,
        flags: 0,
        fmode: 1,
        path_flags: 0,
        dev: 7,
        ino: 12,
        path_len: 0,
        path_depth: 0,
        req_len: 0,
        layout: abi::PATH_RESOLVED,
        syscall: abi::SYS_OPENAT,
        action: 0,
        ftype: REG,
        new_off: 0,
        igen: 1111,
        path: [0; PATH_BUF],
    }
}

/// An opened file at `leaf_first` (components, leaf first) of type ftype
/// and generation igen, inode 7:12.
fn opened(leaf_first: &[u8], ftype: u8, igen: u32) -> Raw {
    let mut e = record(4_000_001);
    e.path[..leaf_first.len()].copy_from_slice(leaf_first);
    e.path_len = leaf_first.len() as u16;
    e.ftype = ftype;
    e.igen = igen;
    Raw::File(Box::new(e))
}

/// A link or rename of absolute `old` to absolute `new`.
fn moved(sys: u8, old: &str, new: &str) -> Raw {
    let mut e = record(4_000_002);
    e.ret = 0;
    e.layout = abi::PATH_MOVED;
    e.syscall = sys;
    e.ftype = 0;
    e.igen = 0;
    let (o, n) = (old.as_bytes(), new.as_bytes());
    e.path[..o.len()].copy_from_slice(o);
    e.req_len = o.len() as u16 + 1;
    e.new_off = e.req_len;
    let at = e.new_off as usize;
    e.path[at..at + n.len()].copy_from_slice(n);
    e.path_len = (at + n.len() + 1) as u16;
    Raw::File(Box::new(e))
}

fn file_detail(ev: &Event) -> (&str, &str, &str, Option<&str>, Option<&str>) {
    match &ev.detail {
        Detail::File {
            path,
            access,
            category,
            same_inode_as,
            old_path,
            ..
        } => (
            path,
            access,
            category,
            same_inode_as.as_deref(),
            old_path.as_deref(),
        ),
        d => panic!("{d:?}"),
    }
}

#[test]
fn identities_differ_only_by_what_both_sides_know() {
    let reg = |gen| Ident { ftype: REG, gen };
    assert!(reg(Some(1)).same_as(&reg(Some(1))));
    assert!(!reg(Some(1)).same_as(&reg(Some(2))));
    assert!(reg(None).same_as(&reg(Some(2))));
    assert!(!reg(None).same_as(&Ident {
        ftype: DIR,
        gen: None
    }));
    assert!(Ident::default().same_as(&Ident {
        ftype: DIR,
        gen: Some(3)
    }));
}

#[test]
fn a_known_inode_number_on_another_type_or_generation_is_another_file_and_forgotten() {
    let mut p = pipeline();
    let mut fx = Vec::new();
    let key = p.handle(opened(b"id_rsa\0.ssh\0root\0", REG, 1111), &mut fx);
    assert!(key.is_some());
    assert!(matches!(fx.as_slice(), [Effect::WatchInode(_)]));
    // The same inode under another name, the same file: a hardlink.
    let link = p.handle(opened(b"x\0tmp\0", REG, 1111), &mut fx).unwrap();
    assert_eq!(file_detail(&link).3, Some("/root/.ssh/id_rsa"));
    fx.clear();
    // The number on a directory (rsync's), then on a file of another
    // generation (pip's temporary file): neither is the key.
    assert!(p
        .handle(opened(b"dir\0tmp\0", DIR, 1111), &mut fx)
        .is_none());
    assert!(matches!(fx.as_slice(), [Effect::ForgetInode(k)] if k.ino == 12));
    assert!(p
        .handle(opened(b"tmp5d6k0jyd\0tmp\0", REG, 1111), &mut fx)
        .is_none());

    let mut p = pipeline();
    p.handle(opened(b"key.pem\0etc\0", REG, 5), &mut fx);
    fx.clear();
    assert!(p
        .handle(opened(b"tmp5d6k0jyd\0tmp\0", REG, 6), &mut fx)
        .is_none());
    assert!(matches!(fx.as_slice(), [Effect::ForgetInode(_)]));
}

#[test]
fn a_rename_onto_a_watched_name_teaches_its_inode_and_a_link_of_it_is_an_evasion() {
    let dir = std::env::temp_dir().join(format!("bt-moved-{}", std::process::id()));
    let docker = dir.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    let cred = docker.join("config.json");
    std::fs::write(&cred, "{}").unwrap();
    let m = std::fs::metadata(&cred).unwrap();
    let (kdev, ino) = (kernel_dev(m.dev()), m.ino());
    let cred_s = cred.to_str().unwrap();
    let tmp = docker.join("config.json123");
    let mut p = pipeline();
    let mut fx = Vec::new();

    let ev = p
        .handle(
            moved(abi::SYS_RENAME, tmp.to_str().unwrap(), cred_s),
            &mut fx,
        )
        .unwrap();
    let (path, access, category, same, old) = file_detail(&ev);
    assert_eq!(
        (path, access, category, same),
        (cred_s, "rename", "registry_credential", None)
    );
    assert_eq!(old, tmp.to_str());
    assert_eq!(ev.severity, Severity::High);
    assert!(
        matches!(fx.as_slice(), [Effect::WatchInode(k)] if k.dev == kdev && k.ino == ino),
        "{fx:?}"
    );

    let other = dir.join("innocent");
    std::fs::hard_link(&cred, &other).unwrap();
    fx.clear();
    let ev = p
        .handle(
            moved(abi::SYS_LINKAT, cred_s, other.to_str().unwrap()),
            &mut fx,
        )
        .unwrap();
    let (path, access, category, _, old) = file_detail(&ev);
    assert_eq!(
        (path, access, category, old),
        (
            other.to_str().unwrap(),
            "link",
            "registry_credential",
            Some(cred_s)
        )
    );
    assert_eq!(ev.severity, Severity::High);
    assert!(fx.is_empty(), "already known: {fx:?}");

    // Neither name watched, the file unknown: nothing.
    std::fs::write(dir.join("a"), "x").unwrap();
    let a = dir.join("a");
    let b = dir.join("b");
    std::fs::rename(&a, &b).unwrap();
    let none = p.handle(
        moved(abi::SYS_RENAME, a.to_str().unwrap(), b.to_str().unwrap()),
        &mut fx,
    );
    assert!(none.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_table_of_known_files_is_bounded_by_the_kernels() {
    use crate::abi::InodeKey;
    let mut f = super::Files::default();
    let rule = Policy::unknown_tripwire();
    let key = |ino| InodeKey { dev: 1, ino };
    for ino in 0..super::KNOWN_MAX as u64 {
        assert!(f.remember(key(ino), rule.clone(), String::new(), Ident::default()));
    }
    assert!(!f.remember(key(u64::MAX), rule.clone(), String::new(), Ident::default()));
    assert!(f.remember(key(7), rule, "/again".into(), Ident::default()));
    assert_eq!(f.known.len(), super::KNOWN_MAX);
}
