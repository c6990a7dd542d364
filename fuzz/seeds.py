#!/usr/bin/env python3
"""Write the fuzz seeds: the hand-written ones into seeds/<target>/ (committed), and, with
--samples DIR, the real Proxmox outputs and Phoenix configs of ../shared into corpus/<target>/
(generated, never committed). Each seed starts with its target's selector byte (see the
target's module docs)."""

import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

HYPERVISOR = {
    "domain_name": "lab.internal",
    "network": {"interfaces": {"name": "vmbr0", "address": "10.0.0.13/24",
                               "gateway": "10.0.0.1", "dns_nameservers": "10.0.0.1"}},
    "portainer_api": {"admin_user": "admin", "admin_password": "base-s3cret-pw",
                      "portainer_hostname": "portainer.lab.internal"},
}
CT = {"name": "base", "template": "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
      "template_snapshot_name": "final-form", "memory_mb": 1024, "cores": 1,
      "storage_pool": "local-lvm", "storage_size_gb": 8, "unprivileged": True,
      "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": "10.0.0.200/24", "gw": "10.0.0.1"},
      "mac_address": "52:54:00:AA:BB:CC", "features": ["base_setup"],
      "pct_options": ["nesting=1", "keyctl=1"], "lxc_options": ["lxc.apparmor.profile: unconfined"],
      "mount_points": [{"host_path": "/srv/data", "container_path": "/data"}],
      "firewall": {"enabled": True, "rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "80,443"}]},
      "tests": {"smoke": [{"name": "up", "type": "script", "path": "base/check.sh"}]},
      "health_checks": [{"name": "ping", "script": "check_ping.sh", "args": ["10.0.0.1"]}]}
CLONE = {"name": "traefik", "clone_from_ctid": "900", "dependencies": ["901"], "memory_mb": 2048,
         "cores": 2, "storage_pool": "local-lvm", "storage_size_gb": 16,
         "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": "10.0.0.12/24", "gw": "10.0.0.1"},
         "mac_address": "52:54:00:AA:BB:CB", "portainer_role": "agent", "start_at_boot": True,
         "boot_order": 2, "boot_delay": 5, "application_script": "phoenix_hypervisor_lxc_102.sh"}
OTHER = dict(CLONE, name="dns", dependencies=[], mac_address="52:54:00:AA:BB:CD",
             network_config={"name": "eth0", "bridge": "vmbr0", "ip": "10.0.0.11/24", "gw": "10.0.0.1"})
LXC = {"nvidia_driver_version": "580.76.05", "lxc_configs": {"900": CT, "102": CLONE, "901": OTHER}}
VM = {"vm_defaults": {"cores": 2, "memory_mb": 4096, "storage_pool": "local-lvm", "network_bridge": "vmbr0"},
      "vms": [{"vmid": 9000, "name": "cloud-template", "is_template": True,
               "template_image": "noble-server-cloudimg-amd64.img", "network_config": {"ip": "dhcp"}},
              {"vmid": 1001, "name": "portainer", "clone_from_vmid": 9000, "dependencies": ["102"],
               "features": ["docker"], "docker_stacks": ["monitoring"],
               "network_config": {"ip": "10.0.0.111/24", "gw": "10.0.0.1"}}]}
STACKS = {"docker_stacks": {"monitoring": {"compose_file_path": "stacks/monitoring/docker-compose.yml",
                                           "environments": {"prod": {"variables": [{"name": "A", "value": "1"}]}}}}}


def j(v):
    return json.dumps(v, indent=2).encode()


def config_loader():
    files = [j(HYPERVISOR), j(LXC), j(VM), j(STACKS)]
    out = [bytes([i]) + f for i, f in enumerate(files)]
    out.append(b"\x04" + b"\xff".join(files))
    out += [
        b"\x01" + b"\xef\xbb\xbf" + files[1],                      # BOM
        b"\x01" + b'{"lxc_configs": {"900": ' + b"[" * 200 + b"]" * 200 + b"}}",  # deep
        b"\x01" + b'{"lxc_configs": {"900": {"memory_mb": 1e400, "cores": 18446744073709551616}}}',
        b"\x01" + b'{"lxc_configs": {"900": {"name": "a"}, "900": {"name": "b"}}}',
        b"\x02" + b'{"vms": [{"vmid": "9000", "name": "caf\xc3\xa9"}]}',
        b"\x00" + b'{"network": {"interfaces": [{"name": "vmbr0; reboot"}]}}',
    ]
    return out


def propstr():
    cases = {
        0: ["name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=52:54:00:AA:BB:CC,ip=10.0.0.5/24,type=veth",
            "name=eth1,bridge=vmbr1,ip=dhcp,tag=20,mtu=9000,ip6=auto,rate=10"],
        1: ["local-lvm:vm-100-disk-0,mp=/data,backup=1,size=10G", "/host/path,mp=/ct/path,ro=1",
            "local-lvm:8", "volume=local:subvol-101-disk-0,size=8G,acl=1"],
        2: ["fuse=1,keyctl=1,nesting=1", "mount=nfs;cifs,nesting=on"],
        3: ["order=3,up=5,down=5", "3"],
        4: ["virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1", "model=e1000,macaddr=BC:24:11:AA:BB:CD,tag=5",
            "e1000=BC:24:11:AA:BB:CD,virtio=BC:24:11:AA:BB:CE"],
        5: ["local-lvm:vm-100-disk-0,discard=on,iothread=1,size=32G", "local-lvm:vm-100-cloudinit,media=cdrom",
            "local-lvm:0,import-from=/var/lib/vz/images/noble.img"],
        6: ["ip=10.0.0.5/24,gw=10.0.0.1", "ip=dhcp,ip6=auto"],
        7: ["dhcp", "manual", "10.0.0.5/24"],
        8: ["10.0.0.1/24", "192.168.0.0/16"],
        9: ["52:54:00:AA:BB:CC", "bc:24:11:00:00:01"],
        10: ["1.5T", "512M", "8G", "100K", "123"],
        11: ["100", "999999999"],
        12: ["traefik", "web-01.lab.internal"],
        13: ["pve1"],
        14: ["local-lvm"],
        15: ["golden", "final-form"],
        16: ["80,443,8000:8100", "ssh"],
        17: ["tcp", "ACCEPT", "in"],
        18: ["10.0.0.0/24,+ipset", "10.0.0.1-10.0.0.9,dc-alias"],
        19: ["ip=10.0.0.5/24,firewall=1\nip=10.0.0.6/24"],
    }
    return [bytes([k]) + s.encode() for k, v in cases.items() for s in v]


def pct_output():
    cases = {
        0: ["VMID       Status     Lock         Name                \n101        running                 dns                 \n102        stopped    backup       traefik             \n"],
        1: ["      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n      9000 cloud-template       stopped    4096              32.00 0         \n       104 VM 104               running    2048              10.00 12345     \n"],
        2: ["status: running\n"],
        3: ["arch: amd64\ncores: 2\ndescription: web%20server%0A\nhostname: web\nlxc.apparmor.profile: unconfined\nmemory: 512\nnet0: name=eth0,bridge=vmbr0,ip=dhcp,type=veth\nrootfs: local-lvm:vm-101-disk-0,size=8G\n\n[golden]\narch: amd64\n"],
        4: ["`-> golden                  2024-05-01 10:00:00     no-description\n `-> second                 2024-05-02 11:30:00     after update\n  `-> current                                       You are here!\n"],
        5: ["Name             Type     Status           Total            Used       Available        %\nlocal             dir     active        98497780        12345678        81082476   12.53%\nlocal-lvm     lvmthin     active       147456000               0       147456000    0.00%\npbs               pbs   disabled               0               0               0      N/A\n"],
        6: ["NAME                                                        SIZE  \nlocal:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst      120.29MB\n"],
        7: ["system          debian-12-standard_12.12-1_amd64.tar.zst\nsystem          alpine-3.22-default_20250617_amd64.tar.xz amd64\n"],
        8: ['{\n   "exitcode" : 0,\n   "exited" : 1,\n   "out-data" : "hello\\n"\n}\n', '{\n   "pid" : 1234\n}\n'],
        9: ['Task started\n{"data":"UPID:pve:00001234:00005678:66DC5987:vzstart:101:root@pam:"}\n'],
        10: ["Phoenix%20template%3A%20ubuntu%0Aline%202"],
        11: ["trying to acquire lock...\ncan't lock file '/run/lock/lxc/pve-config-110.lock' - got timeout\n",
             "400 Parameter verification failed.\nmemory: type check ('integer') failed - got 'lots'\npct set <vmid> [OPTIONS]\n",
             "596 Broken pipe\n"],
        12: ["#web%20server\narch: amd64\nlxc.apparmor.profile: unconfined\nmemory: 512\nlxc.mount.auto: proc:rw\n\n[before]\nlxc.idmap: u 0 1 2\nlock: snapshot\n"],
        13: ['{"vmid": 101, "name": "dns", "status": "running", "template": "", "lock": "backup"}'],
        14: ['[{"type": "lxc", "vmid": "101", "node": "pve", "status": "running", "name": "dns"}, {"type": "qemu", "vmid": 9000, "node": "pve2", "status": "stopped", "template": 1}, {"type": "storage"}]'],
        15: ['{"arch": "amd64", "cores": 2, "digest": "abc", "lxc": [["lxc.apparmor.profile", "unconfined"]], "onboot": 1}'],
        16: ['[{"name": "golden", "snaptime": 1700000000, "description": "x"}, {"name": "current", "parent": "golden"}]'],
        17: ['[{"storage": "local", "type": "dir", "content": "vztmpl,iso", "active": 1, "enabled": 1, "total": 100, "used": "5", "avail": 95}]'],
        18: ['[{"volid": "local:vztmpl/x.tar.zst", "content": "vztmpl", "format": "tzst", "size": 1024, "vmid": "101"}]'],
        19: ['[{"node": "pve", "status": "online", "maxcpu": 16, "maxmem": 68719476736}]'],
        20: ['{"version": "9.1.2", "release": "9.1", "repoid": "abc"}'],
        21: ['{"status": "stopped", "exitstatus": "WARNINGS: 2"}', '{"status": "stopped", "exitstatus": "command failed"}'],
        22: ['"101"', "1.5", "true"],
    }
    return [bytes([k]) + s.encode() for k, v in cases.items() for s in v]


def api_response():
    upid = "UPID:pve:00001234:00005678:66DC5987:vzcreate:101:root@pam!phx:"
    out = [
        b"\x00" + b'{"data": [{"vmid": "101", "status": "running"}], "total": "1"}',
        b"\x00" + b'{"data": null}',
        b"\x00" + b'{"data": {"ticket": "PVE:root@pam:66DC5987::sig", "CSRFPreventionToken": "66DC5987:tok"}}',
        b"\x01" + (400).to_bytes(2, "big") + b"Parameter verification failed.\xff"
        + b'{"data": null, "errors": {"vmid": "VM 218 already exists"}}',
        b"\x01" + (500).to_bytes(2, "big") + b'{"data": null, "message": "CT is locked (disk)\\n"}',
        b"\x01" + (596).to_bytes(2, "big") + b"Broken pipe\xff",
        b"\x02" + upid.encode(),
        b"\x02" + b"UPID:pve:00001234:1ABCDEF01:66DC5987:download::root@pam:",
        b"\x03" + b'[{"pos": 0, "type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22", "enable": 1}]',
        b"\x03" + b'{"exited": 1, "exitcode": 3, "out-data": "o", "err-data": "e"}',
        b"\x03" + b'[{"type": "node", "name": "pve2", "local": 1}]',
        b"\x04" + b"root@pam!phx=5ec7e7aa-0b1e-4c8f-9d2a-phxtestsecret\n",
        b"\x04" + b"PVEAPIToken=root@pam!9x=secret-value",
        b"\x05" + b"AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        b"\x06" + upid.encode(),
        b"\x07" + b'{"data": {"status": "stopped", "exitstatus": "OK", "upid": "' + upid.encode() + b'"}}',
        b"\x07" + b'{"data": [{"n": 1, "t": "starting"}, {"n": "2", "t": "TASK ERROR: failed"}], "total": 2}',
    ]
    return out


def samples(sel_of, files):
    """Real outputs, each prefixed with the selector of the parser that reads it."""
    out = []
    for path in files:
        sel = sel_of(os.path.basename(path))
        if sel is not None:
            with open(path, "rb") as f:
                out.append(bytes([sel]) + f.read())
    return out


PCT_SAMPLE = [("cli-pct-list", 0), ("cli-qm-list", 1), ("cli-pct-status", 2), ("cli-pct-config", 3),
              ("cli-qm-config", 3), ("cli-pvesm-status", 5), ("cli-pveam-list", 6),
              ("cli-pveam-available", 7), ("cli-pvesh-get-agent-exec", 8), ("cli-pvesh-create", 9),
              ("cli-error", 11), ("api-lxc-status", 13), ("api-qemu-status", 13),
              ("api-cluster-resources", 14), ("api-lxc-config", 15), ("api-qemu-config", 15),
              ("api-qemu-snapshot", 16), ("api-storage-list", 17), ("api-storage-content", 18),
              ("api-nodes", 19), ("api-version", 20), ("api-task-status", 21)]


def pct_sel(name):
    for prefix, sel in PCT_SAMPLE:
        if name.startswith(prefix):
            return sel
    return None


def api_sel(name):
    if name.startswith("api-error") and name.endswith(".json"):
        return None  # error bodies need a status: see api_error_samples
    if name.startswith("api-") and name.endswith(".json"):
        return 0
    return None


def write(dirname, seeds):
    os.makedirs(dirname, exist_ok=True)
    for s in seeds:
        name = hashlib.sha1(s).hexdigest()
        with open(os.path.join(dirname, name), "wb") as f:
            f.write(s)
    print(f"{dirname}: {len(seeds)} seeds")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", help="the ../shared/fixtures dir (pve-samples, phoenix)")
    a = ap.parse_args()
    hand = {"config_loader": config_loader(), "propstr": propstr(),
            "pct_output": pct_output(), "api_response": api_response()}
    for target, seeds in hand.items():
        write(os.path.join(HERE, "seeds", target), seeds)
    if a.samples:
        pve = os.path.join(a.samples, "pve-samples")
        pve_files = sorted(os.path.join(pve, n) for n in os.listdir(pve))
        write(os.path.join(HERE, "corpus", "pct_output"), samples(pct_sel, pve_files))
        api = samples(api_sel, pve_files)
        for n in sorted(os.listdir(pve)):
            if n.startswith("api-error") and n.endswith(".json"):
                status_file = os.path.join(pve, n[: -len(".json")] + ".status.txt")
                if os.path.exists(status_file):
                    line = open(status_file, "rb").read().split(b"\n")[0]
                    parts = line.split(b" ", 1)  # "400 Parameter verification failed."
                    code = int(parts[0]) if parts[0].isdigit() else 500
                    reason = parts[1].strip() if len(parts) > 1 else b""
                    body = open(os.path.join(pve, n), "rb").read()
                    api.append(b"\x01" + code.to_bytes(2, "big") + reason + b"\xff" + body)
        write(os.path.join(HERE, "corpus", "api_response"), api)
        ph = os.path.join(a.samples, "phoenix")
        cfg = []
        for n in sorted(os.listdir(ph)):
            if "schema" in n or not n.endswith(".json"):
                continue
            sel = 0 if "hypervisor" in n else 1 if "lxc" in n else 2 if "vm_configs" in n else 3
            cfg.append(bytes([sel]) + open(os.path.join(ph, n), "rb").read())
        write(os.path.join(HERE, "corpus", "config_loader"), cfg)


if __name__ == "__main__":
    main()
