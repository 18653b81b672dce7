//! The kernel's file filter: how the policy's names, parents, prefixes and
//! suffixes are encoded into the file family's maps, swapped in without a
//! gap, and checked later for drift.

use libbpf_rs::{MapCore, MapFlags};

use super::file::FileSkel;
use super::guard::map_drift;
use super::guard::Drift;
use super::Sensors;
use crate::abi::{
    as_bytes, AffixKey, FileCfg, InodeKey, NameKey, AFFIX_LENS, INODE_HINTS, INODE_WATCH, KEY_LEN,
};
use crate::policy::KernelFilter;

fn name_key(s: &str) -> NameKey {
    let mut k = NameKey { name: [0; KEY_LEN] };
    let b = s.as_bytes();
    k.name[..b.len()].copy_from_slice(b);
    k
}

fn affix_key(s: &str) -> AffixKey {
    let mut k = AffixKey {
        len: s.len() as u32,
        ..Default::default()
    };
    k.s[..s.len()].copy_from_slice(s.as_bytes());
    k
}

/// The filter's four key sets as map keys, in the order of `key_maps`.
fn filter_keys(f: &KernelFilter) -> [Vec<Vec<u8>>; 4] {
    let name = |n: &String| as_bytes(&name_key(n)).to_vec();
    let affix = |n: &String| as_bytes(&affix_key(n)).to_vec();
    [
        f.names.iter().map(name).collect(),
        f.parents.iter().map(name).collect(),
        f.prefixes.iter().map(affix).collect(),
        f.suffixes.iter().map(affix).collect(),
    ]
}

/// The maps `filter_keys` are written to, with their names. A macro, not a
/// function: it borrows only these fields, so the skeleton's .bss stays
/// free to write while the maps are in use.
macro_rules! key_maps {
    ($skel:expr) => {
        [
            (&$skel.maps.name_filter as &dyn MapCore, "name_filter"),
            (&$skel.maps.parent_filter, "parent_filter"),
            (&$skel.maps.prefix_filter, "prefix_filter"),
            (&$skel.maps.suffix_filter, "suffix_filter"),
        ]
    };
}

/// Puts a file filter in place with no moment in which an open either the
/// old or the new one watches goes unseen: the new keys go in first, then the
/// new configuration into the idle slot, which is then made active, and only
/// then do the keys only `old` needed go. `inodes` are the files to watch
/// with their flags; `disarm` the tripwires no longer armed (they stay
/// watched). At load, `old` is empty.
pub(super) fn apply_file_filter(
    skel: &mut FileSkel<'static>,
    old: &KernelFilter,
    new: &KernelFilter,
    inodes: &[(InodeKey, u8)],
    disarm: &[InodeKey],
) -> libbpf_rs::Result<()> {
    let one = 1u32.to_ne_bytes();
    let maps = key_maps!(skel);
    let (add, had) = (filter_keys(new), filter_keys(old));
    for ((map, _), keys) in maps.iter().zip(&add) {
        for k in keys {
            map.update(k, &one, MapFlags::ANY)?;
        }
    }
    for (k, flags) in inodes {
        add_inode(skel, k, *flags)?;
    }
    for k in disarm {
        // Exactly WATCH: the kill bit goes, the hardlink check stays.
        skel.maps.inode_filter.update(
            as_bytes(k),
            &u32::from(INODE_WATCH).to_ne_bytes(),
            MapFlags::ANY,
        )?;
    }
    let bss = skel.maps.bss_data.as_deref_mut();
    let idle = bss.as_ref().map_or(0, |b| b.cfg_slot & 1) ^ 1;
    skel.maps
        .file_cfg
        .update(&idle.to_ne_bytes(), as_bytes(&file_cfg(new)), MapFlags::ANY)?;
    if let Some(b) = bss {
        // SAFETY: cfg_slot lives in the program's mmapped .bss; a volatile
        // aligned u32 store is seen whole by the programs.
        unsafe { std::ptr::write_volatile(&mut b.cfg_slot, idle) };
    }
    for (((map, _), had), add) in maps.iter().zip(had).zip(&add) {
        for k in had.iter().filter(|k| !add.contains(k)) {
            let _ = map.delete(k);
        }
    }
    Ok(())
}

/// Adds an inode to the hardlink check (`flags`: INODE_WATCH, with
/// INODE_KILL for a tripwire), keeping any flag it already has. The hint slot
/// goes first, so the kernel never skips a key that is already in the map.
pub(super) fn add_inode(
    skel: &FileSkel<'static>,
    k: &InodeKey,
    flags: u8,
) -> libbpf_rs::Result<()> {
    let slot = ((k.ino % INODE_HINTS) as u32).to_ne_bytes();
    let hint = &skel.maps.inode_hint;
    let old_hint = hint
        .lookup(&slot, MapFlags::ANY)?
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    hint.update(&slot, &[old_hint | flags], MapFlags::ANY)?;
    let filter = &skel.maps.inode_filter;
    let old = filter
        .lookup(as_bytes(k), MapFlags::ANY)?
        .and_then(|v| v.get(..4).and_then(|b| b.try_into().ok()))
        .map(u32::from_ne_bytes)
        .unwrap_or(0);
    filter.update(
        as_bytes(k),
        &(old | u32::from(flags)).to_ne_bytes(),
        MapFlags::ANY,
    )
}

/// Stops watching an inode learned while running (exactly INODE_WATCH: a
/// tripwire stays armed). Its hint slot stays: other inodes may share it.
pub(super) fn remove_inode(skel: &FileSkel<'static>, k: &InodeKey) -> libbpf_rs::Result<()> {
    let filter = &skel.maps.inode_filter;
    let watch = u32::from(INODE_WATCH).to_ne_bytes();
    match filter.lookup(as_bytes(k), MapFlags::ANY)? {
        Some(v) if v == watch => filter.delete(as_bytes(k)),
        _ => Ok(()),
    }
}

fn set_byte(set: &mut [u64; 4], c: u8) {
    set[usize::from(c >> 6)] |= 1 << (c & 63);
}

/// The cheap facts the kernel checks before any hash lookup.
fn file_cfg(f: &KernelFilter) -> FileCfg {
    let mut cfg = FileCfg {
        match_all: u32::from(!f.match_all.is_empty()),
        ..Default::default()
    };
    for n in &f.names {
        cfg.name_lens |= 1 << n.len();
        set_byte(&mut cfg.name_last, *n.as_bytes().last().unwrap_or(&0));
    }
    for n in &f.parents {
        cfg.parent_lens |= 1 << n.len();
        set_byte(&mut cfg.parent_last, *n.as_bytes().last().unwrap_or(&0));
    }
    let mut lens = std::collections::BTreeSet::new();
    for p in &f.prefixes {
        set_byte(&mut cfg.prefix_first, p.as_bytes()[0]);
        lens.insert(p.len() as u8);
    }
    for (slot, l) in cfg.prefix_len.iter_mut().zip(&lens) {
        *slot = *l;
    }
    lens.clear();
    for p in &f.suffixes {
        set_byte(&mut cfg.suffix_last, *p.as_bytes().last().unwrap_or(&0));
        lens.insert(p.len() as u8);
    }
    for (slot, l) in cfg.suffix_len.iter_mut().zip(&lens) {
        *slot = *l;
    }
    debug_assert!(lens.len() <= AFFIX_LENS);
    cfg
}

impl Sensors {
    /// Whether the file filter the kernel uses is the one bee-trace wrote:
    /// the active configuration slot and every name, parent, prefix and
    /// suffix key of `filter`.
    pub fn file_filter_drift(&self, filter: &KernelFilter) -> Vec<Drift> {
        let Some(skel) = &self.file else {
            return Vec::new();
        };
        if !skel.maps.rodata_data.is_some_and(|r| r.watch_files) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let slot = skel.maps.bss_data.as_deref().map_or(0, |b| {
            // SAFETY: a volatile aligned u32 load from the mmapped .bss.
            unsafe { std::ptr::read_volatile(&b.cfg_slot) }
        }) & 1;
        let want = file_cfg(filter);
        match skel
            .maps
            .file_cfg
            .lookup(&slot.to_ne_bytes(), MapFlags::ANY)
        {
            Ok(Some(v)) if v == as_bytes(&want) => {}
            Ok(_) | Err(_) => out.push(map_drift(
                &skel.maps.file_cfg,
                "file_cfg",
                format!("the active slot {slot} no longer holds the file filter bee-trace wrote"),
            )),
        }
        let one = 1u32.to_ne_bytes();
        for ((map, name), keys) in key_maps!(skel).into_iter().zip(filter_keys(filter)) {
            let missing = keys
                .iter()
                .filter(|k| !matches!(map.lookup(k, MapFlags::ANY), Ok(Some(v)) if v == one))
                .count();
            if missing > 0 {
                out.push(map_drift(
                    map,
                    name,
                    format!(
                        "{missing} of the {} keys bee-trace wrote are gone",
                        keys.len()
                    ),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit(set: &[u64; 4], c: u8) -> bool {
        set[usize::from(c >> 6)] >> (c & 63) & 1 == 1
    }

    #[test]
    fn file_cfg_records_the_cheap_facts_of_every_key() {
        let mut f = KernelFilter::default();
        f.names.insert("credentials".into());
        f.parents.insert("sudoers.d".into());
        f.prefixes.insert("id_".into());
        f.prefixes.insert(".env.".into());
        f.suffixes.insert(".pem".into());
        let c = file_cfg(&f);
        assert_eq!(c.match_all, 0);
        assert_eq!(c.name_lens, 1 << 11);
        assert!(bit(&c.name_last, b's') && !bit(&c.name_last, b't'));
        assert_eq!(c.parent_lens, 1 << 9);
        assert!(bit(&c.parent_last, b'd'));
        assert!(bit(&c.prefix_first, b'i') && bit(&c.prefix_first, b'.'));
        assert_eq!(&c.prefix_len[..3], &[3, 5, 0]);
        assert!(bit(&c.suffix_last, b'm'));
        assert_eq!(&c.suffix_len[..2], &[4, 0]);
        f.match_all.push("**/a*b".into());
        assert_eq!(file_cfg(&f).match_all, 1);
    }
}
