//! Unit tests of planting, removal and leftover cleanup in a temp dir.

use super::*;
use crate::policy::FileAction;
use crate::policy::{Canary, CanaryKind};
use std::fs;
use std::os::unix::fs::MetadataExt;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bt-canary-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn canary(path: PathBuf) -> Canary {
    Canary {
        kind: CanaryKind::guess(&path),
        path,
        action: FileAction::Kill,
    }
}

#[test]
fn decoys_differ_each_time_and_look_like_their_kind() {
    assert_ne!(
        crate::decoy::make(CanaryKind::Aws),
        crate::decoy::make(CanaryKind::Aws)
    );
    assert!(crate::decoy::make(CanaryKind::Aws).contains("aws_access_key_id = AKIA"));
    assert!(
        crate::decoy::make(CanaryKind::Ssh).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    );
    assert!(crate::decoy::make(CanaryKind::Npm).contains("_authToken=npm_"));
}

#[test]
fn plants_with_its_directories_and_removes_exactly_that() {
    let d = scratch("plant");
    let path = d.join("home/.aws/credentials");
    let (c, out) = Canaries::plant(&[canary(path.clone())], None);
    assert!(matches!(out[0], Outcome::Planted), "{out:?}");
    assert!(fs::read_to_string(&path).unwrap().contains("AKIA"));
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    drop(c);
    assert!(!path.exists());
    assert!(!d.join("home").exists(), "planted directories are removed");
    assert!(d.exists(), "the existing ancestor stays");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn never_touches_an_existing_file_or_a_replaced_one() {
    let d = scratch("exists");
    let real = d.join("credentials");
    fs::write(&real, "real").unwrap();
    let (c, out) = Canaries::plant(&[canary(real.clone())], None);
    assert!(matches!(out[0], Outcome::Exists));
    drop(c);
    assert_eq!(fs::read_to_string(&real).unwrap(), "real");

    let swapped = d.join(".netrc");
    let (c, out) = Canaries::plant(&[canary(swapped.clone())], None);
    assert!(matches!(out[0], Outcome::Planted));
    fs::remove_file(&swapped).unwrap();
    fs::write(&swapped, "someone else's").unwrap();
    drop(c);
    assert_eq!(fs::read_to_string(&swapped).unwrap(), "someone else's");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn leftovers_of_a_dead_process_are_removed_and_nothing_else() {
    let d = scratch("leftover");
    let state = d.join("state");
    let path = d.join("x/.env");
    let (mut c, _) = Canaries::plant(
        &[canary(path.clone())],
        Some(open_state_dir(&state).unwrap()),
    );
    let record = state.join(format!("canaries-{}.json", std::process::id()));
    assert!(record.exists());
    // Pretend a killed run (pid 0 never names a live bee-trace) left it.
    let planted = std::mem::take(&mut c.planted);
    let dead = state.join("canaries-0.json");
    fs::rename(&record, &dead).unwrap();
    fs::write(d.join("other"), "x").unwrap();
    assert_eq!(clean_leftovers(&open_state_dir(&state).unwrap()), 1);
    assert!(!path.exists() && !dead.exists());
    assert!(d.join("other").exists());
    drop(planted);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn retain_removes_only_the_canaries_no_longer_wanted() {
    let d = scratch("retain");
    let a = d.join("a/.npmrc");
    let b = d.join("b/.npmrc");
    let (mut c, _) = Canaries::plant(&[canary(a.clone()), canary(b.clone())], None);
    c.retain(std::slice::from_ref(&a));
    assert!(a.exists());
    assert!(!b.exists() && !d.join("b").exists());
    assert!(c.is_planted(&a) && !c.is_planted(&b));
    drop(c);
    assert!(!a.exists());
    fs::remove_dir_all(&d).unwrap();
}
