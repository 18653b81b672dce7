//! The kernel's file filter and the seed files compiled from a policy.

use std::collections::BTreeSet;

use super::*;
use crate::abi::AFFIX_LENS;

fn p(yaml: &str) -> Result<Policy, PolicyError> {
    Policy::from_yaml(yaml, Path::new("test.yml"))
}

#[test]
fn kernel_filter_covers_every_default_rule_cheaply() {
    let k = Policy::default_policy().kernel_filter();
    assert!(k.match_all.is_empty(), "{:?}", k.match_all);
    assert!(k.names.contains("credentials"));
    assert!(k.names.contains("shadow"));
    assert!(k.prefixes.contains("id_"));
    assert!(k.prefixes.contains(".env."));
    assert!(k.suffixes.contains(".pem"));
    assert!(k.parents.contains("sudoers.d"));
    assert!(
        !k.parents.contains(".ssh"),
        "the id_ prefix is the more selective fact"
    );
}

#[test]
fn kernel_filter_tries_at_most_affix_lens_distinct_lengths() {
    let mut yaml = String::from("files:\n  watch_read:\n");
    for n in 1..=10 {
        yaml.push_str(&format!("    - \"/srv/{}*\"\n", "p".repeat(n)));
    }
    let pol = Policy::from_yaml(&yaml, Path::new("t.yml")).unwrap();
    let k = pol.kernel_filter();
    let lens: BTreeSet<usize> = k.prefixes.iter().map(|p| p.len()).collect();
    assert!(lens.len() <= AFFIX_LENS, "{lens:?}");
    // The two that did not fit fall back to their parent, "srv".
    assert!(k.parents.contains("srv"));
    assert!(k.match_all.is_empty());
}

#[test]
fn kernel_filter_admits_every_path_a_rule_matches() {
    // Property the kernel relies on: a path some rule matches always has
    // a name, parent, prefix or suffix in the filter.
    let pol = Policy::default_policy();
    let k = pol.kernel_filter();
    for path in [
        "/root/.ssh/id_rsa",
        "/home/a/.aws/credentials",
        "/x/.env",
        "/x/.env.local",
        "/x/server.key",
        "/etc/sudoers.d/ci",
        "/home/r/.gnupg/private-keys-v1.d/ABC.key",
        "/etc/ssh/ssh_host_ed25519_key",
        "/home/runner/.credentials",
        "/var/spool/cron/crontabs/root",
    ] {
        assert!(
            pol.match_file(path, Access::Write).is_some(),
            "{path} should match a rule"
        );
        let mut comps = path.rsplit('/');
        let name = comps.next().unwrap();
        let parent = comps.next().unwrap_or("");
        let admitted = k.names.contains(name)
            || k.parents.contains(parent)
            || k.prefixes.iter().any(|p| name.starts_with(p.as_str()))
            || k.suffixes.iter().any(|s| name.ends_with(s.as_str()));
        assert!(admitted, "{path} would be dropped in the kernel");
    }
}

#[test]
fn a_pattern_no_cheap_fact_covers_makes_every_open_resolved() {
    let pol = p("files:\n  watch_read: [\"/x*y\", \"**/a*b\", \"/srv/*.log\"]\n").unwrap();
    let k = pol.kernel_filter();
    // Neither a literal name, an affix nor a literal parent to go by.
    assert!(
        k.match_all.contains(&"/x*y".to_string()),
        "{:?}",
        k.match_all
    );
    assert!(
        k.match_all.contains(&"**/a*b".to_string()),
        "{:?}",
        k.match_all
    );
    assert!(k.suffixes.contains(".log"));
    assert!(!k.match_all.contains(&"/srv/*.log".to_string()));
}

#[test]
fn seed_files_are_the_existing_files_a_rule_names_one_level_deep() {
    let d = std::env::temp_dir().join(format!("bt-seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("sub")).unwrap();
    for f in ["a.key", "b.txt", "skip.txt", "sub/c.txt", "other.md"] {
        std::fs::write(d.join(f), "x").unwrap();
    }
    let dir = d.display();
    let yaml = format!(
        "files:\n  watch_read: [\"{dir}/a.key\", \"{dir}/missing.key\", \"{dir}/*.txt\", \"{dir}/*/c.txt\"]\n  \
         exclude_paths: [\"{dir}/skip.txt\"]\n  rules:\n    - {{path: \"{dir}/skip.txt\", action: kill}}\n"
    );
    let pol = p(&yaml).unwrap();
    let mine: Vec<PathBuf> = pol
        .seed_files(&[])
        .into_iter()
        .filter(|f| f.starts_with(&d))
        .collect();
    // Literal files that exist, one glob level under a literal directory,
    // and an excluded file only when a kill rule names it; never a glob in
    // a parent (that would be a crawl).
    assert_eq!(
        mine,
        vec![d.join("a.key"), d.join("b.txt"), d.join("skip.txt")]
    );
    std::fs::remove_dir_all(&d).unwrap();
}
