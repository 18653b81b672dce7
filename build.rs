//! Compiles every `bpf/*.bpf.c` into a libbpf skeleton in `OUT_DIR`, with the
//! shared headers of `bpf/include/` and the committed `vmlinux.h` of the
//! architecture being built for.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The target's architecture, not the host's: a cross build must see the
    // target kernel's types.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let vmlinux = manifest.join("vmlinux").join(&arch);
    if !vmlinux.join("vmlinux.h").exists() {
        panic!(
            "no vmlinux.h for target architecture {arch} in {}: run scripts/gen-vmlinux.sh",
            vmlinux.display()
        );
    }
    let bpf_dir = manifest.join("bpf");
    let include = bpf_dir.join("include");
    let clang = env::var_os("CLANG").unwrap_or_else(|| "clang".into());

    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed={}", vmlinux.display());
    println!(
        "cargo:rerun-if-changed={}",
        vmlinux.join("vmlinux.h").display()
    );
    // The directories too, so that a new source or header is seen.
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    println!("cargo:rerun-if-changed={}", include.display());
    for header in files(&include) {
        println!("cargo:rerun-if-changed={}", header.display());
    }

    let sources = files(&bpf_dir);
    for path in &sources {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for src in sources.iter().filter(|p| {
        p.file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|n| n.ends_with(".bpf.c"))
    }) {
        let name = src
            .file_name()
            .and_then(OsStr::to_str)
            .and_then(|n| n.strip_suffix(".bpf.c"))
            .expect("checked above");
        let skel = out.join(format!("{name}.skel.rs"));
        SkeletonBuilder::new()
            .source(src)
            .clang(&clang)
            .clang_args([
                OsStr::new("-I"),
                vmlinux.as_os_str(),
                OsStr::new("-I"),
                include.as_os_str(),
                OsStr::new("-Wall"),
                OsStr::new("-Werror"),
            ])
            .build_and_generate(&skel)
            .unwrap_or_else(|e| panic!("building the BPF skeleton for {}: {e:#}", src.display()));
    }
}

/// The regular files directly in `dir`, sorted (subdirectories are not
/// descended into).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{} is not readable: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}
