// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Not a probe family and never loaded: one global of every struct and enum
 * of abi.h, so that the skeleton generator writes their layout, as clang
 * laid them out, into `types::` of abi.skel.rs. src/abi/check.rs checks each
 * Rust mirror, field by field, and each shared constant against it.
 *
 * Built without vmlinux.h: these typedefs are all that abi.h may need.
 */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#include "abi.h"

struct bt_header abi_header;
struct bt_exec_event abi_exec;
struct bt_fork_event abi_fork;
struct bt_exit_event abi_exit;
struct bt_file_event abi_file;
struct bt_net_event abi_net;
struct bt_egress_event abi_egress;
struct bt_egress_cfg abi_egress_cfg;
struct bt_lpm4_key abi_lpm4_key;
struct bt_lpm6_key abi_lpm6_key;
struct bt_egress_val abi_egress_val;
struct bt_dns_event abi_dns;
struct bt_dns_key abi_dns_key;
struct bt_dns_rule abi_dns_rule;
struct bt_obj_key abi_obj_key;
struct bt_tamper_event abi_tamper;
struct bt_mem_event abi_mem;
struct bt_name_key abi_name_key;
struct bt_affix_key abi_affix_key;
struct bt_inode_key abi_inode_key;
struct bt_file_cfg abi_file_cfg;
struct bt_fold_key abi_fold_key;
struct bt_fold_val abi_fold_val;
struct bt_share_val abi_share_val;
struct bt_serve_event abi_serve;

enum bt_sizes abi_sizes;
enum bt_ev_type abi_ev_type;
enum bt_af abi_af;
enum bt_path_flags abi_path_flags;
enum bt_path_layout abi_path_layout;
enum bt_file_action abi_file_action;
enum bt_open_sys abi_open_sys;
enum bt_file_head abi_file_head;
enum bt_egress_action abi_egress_action;
enum bt_egress_hook abi_egress_hook;
enum bt_egress_rule abi_egress_rule;
enum bt_egress_mode abi_egress_mode;
enum bt_dns_cut abi_dns_cut;
enum bt_tamper_kind abi_tamper_kind;
enum bt_obj_type abi_obj_type;
enum bt_mem_kind abi_mem_kind;
enum bt_inode_bits abi_inode_bits;
enum bt_stdio abi_stdio;
enum bt_fold abi_fold;
enum bt_serve_op abi_serve_op;
