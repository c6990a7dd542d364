//! Helpers shared by the fuzz targets: how an input is cut into the parts a target feeds to
//! the parsers, and the small valid site the config-loader target starts from.
//!
//! Every target reads its first byte as a selector (which parser, which file) and the rest as
//! the text, so one corpus per target covers every parser of that family.

/// The input after its selector byte, and the selector reduced modulo `n`.
pub fn select(data: &[u8], n: u8) -> Option<(u8, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((first % n, rest))
}

/// Text for a parser that takes `&str`: invalid UTF-8 is replaced, as a caller reading a
/// file or a process's output lossily would.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// The parts of `data` separated by `0xFF` (a byte UTF-8 text never contains).
pub fn parts(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0xFF).collect()
}

/// A small valid site (as phx-core's config tests use): a template container 900, its clones
/// 102 (depends on 103) and 103, a template VM 9000 and its clone 1001 (depends on 102).
pub mod site {
    /// `phoenix_hypervisor_config.json`.
    pub const HYPERVISOR: &str = r#"{"domain_name":"lab.internal",
 "network":{"interfaces":{"name":"vmbr0","address":"10.0.0.13/24","gateway":"10.0.0.1","dns_nameservers":"10.0.0.1"}},
 "portainer_api":{"admin_user":"admin","admin_password":"base-s3cret-pw","portainer_hostname":"portainer.lab.internal"}}"#;

    /// `phoenix_lxc_configs.json`.
    pub const LXC: &str = r#"{"lxc_configs":{
 "900":{"name":"base","template":"local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst","template_snapshot_name":"final-form",
        "memory_mb":1024,"cores":1,"storage_pool":"local-lvm","storage_size_gb":8,"unprivileged":true,
        "network_config":{"name":"eth0","bridge":"vmbr0","ip":"10.0.0.200/24","gw":"10.0.0.1"},"mac_address":"52:54:00:AA:BB:CC"},
 "102":{"name":"traefik","clone_from_ctid":"900","dependencies":["103"],"memory_mb":2048,"cores":2,"storage_pool":"local-lvm",
        "storage_size_gb":16,"network_config":{"name":"eth0","bridge":"vmbr0","ip":"10.0.0.12/24","gw":"10.0.0.1"},
        "mac_address":"52:54:00:AA:BB:CB","portainer_role":"none","features":["base_setup"],
        "firewall":{"enabled":true,"rules":[{"type":"in","action":"ACCEPT","proto":"tcp","port":"80,443"}]}},
 "103":{"name":"step-ca","clone_from_ctid":"900","memory_mb":1024,"cores":1,"storage_pool":"local-lvm","storage_size_gb":8,
        "network_config":{"name":"eth0","bridge":"vmbr0","ip":"10.0.0.10/24","gw":"10.0.0.1"},"mac_address":"52:54:00:AA:BB:CA",
        "tests":{"smoke":[{"name":"ca up","type":"script","path":"step-ca/check.sh"}]}}}}"#;

    /// `phoenix_vm_configs.json`.
    pub const VM: &str = r#"{"vm_defaults":{"cores":2,"memory_mb":4096,"storage_pool":"local-lvm","network_bridge":"vmbr0"},
 "vms":[{"vmid":9000,"name":"cloud-template","is_template":true,"template_image":"noble-server-cloudimg-amd64.img","network_config":{"ip":"dhcp"}},
        {"vmid":1001,"name":"portainer","clone_from_vmid":9000,"dependencies":["102"],"network_config":{"ip":"10.0.0.111/24","gw":"10.0.0.1"}}]}"#;

    /// `phoenix_stacks_config.json`.
    pub const STACKS: &str = r#"{"docker_stacks":{"monitoring":{"compose_file_path":"stacks/monitoring/docker-compose.yml"}}}"#;
}
