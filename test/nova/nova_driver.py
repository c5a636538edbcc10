"""Drives Nova's ironic virt driver (Debian's python3-nova, unchanged)
against a ferric conductor, walking nova-compute's sequence.

Run by nova_test.go with FERRIC_URL (the conductor's API) and FERRIC_NODES
(a JSON object naming the nodes the Go test enrolled). Only what needs
Nova's own database or services is stubbed: the compute service list and
the instances on this host (database), instance save/refresh, the virt
API, and Neutron's security groups. Everything else is Nova's code calling
ferric through python-ironicclient and openstacksdk, as nova-compute does.

Each step prints one line "STEP <name> <seconds>"; a failed check prints
"FAIL <step>: <what>" and the program exits 1.
"""

import json
import os
import sys
import time
import uuid

FERRIC = os.environ["FERRIC_URL"]
NODES = json.loads(os.environ["FERRIC_NODES"])
HOST = "compute1"

import nova.conf  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import exception  # noqa: E402
from nova import objects  # noqa: E402

CONF = nova.conf.CONF
# FERRIC_NOVA_CONF: a nova.conf whose [ironic] section authenticates with
# Keystone (the endpoint then comes from the catalog); without it, noauth
# with the endpoint given.
KEYSTONE_CONF = os.environ.get("FERRIC_NOVA_CONF")
CONF([], project="nova", default_config_files=[KEYSTONE_CONF] if KEYSTONE_CONF else [])
CONF.set_override("host", HOST)
if not KEYSTONE_CONF:
    CONF.set_override("auth_type", "none", group="ironic")
    CONF.set_override("endpoint_override", FERRIC, group="ironic")
CONF.set_override("api_retry_interval", 1, group="ironic")
CONF.set_override("api_max_retries", 30, group="ironic")
CONF.set_override("mkisofs_cmd", "genisoimage")
objects.register_all()

from nova.compute import power_state  # noqa: E402
from nova.compute import provider_tree  # noqa: E402
from nova.compute import task_states  # noqa: E402
from nova.compute import vm_states  # noqa: E402
from nova.network import model as network_model  # noqa: E402
from nova.network import security_group_api  # noqa: E402
from nova.virt.ironic import driver as ironic_driver  # noqa: E402
import requests  # noqa: E402

# ---- stubs: only what needs Nova's database or services ----

MANAGED = set()  # uuids of the instances this compute host runs (DB)


def _no_computes(ctxt, hv_type):
    return []  # no other nova-compute in the ring (DB: services)


def _uuids_by_host(ctxt, host):
    return sorted(MANAGED)  # DB: instances on host


objects.ServiceList.get_all_computes_by_hv_type = staticmethod(_no_computes)
objects.InstanceList.get_uuids_by_host = staticmethod(_uuids_by_host)
objects.Instance.save = lambda self, *a, **kw: self.obj_reset_changes()
objects.Instance.refresh = lambda self, *a, **kw: None
objects.Instance.get_bdms = lambda self: objects.BlockDeviceMappingList(objects=[])  # DB
security_group_api.get_instance_security_groups = lambda ctxt, inst: []  # Neutron


def _no_lazy_load(self, attrname):
    # Nova lazy-loads unset fields from its database; the instances here
    # set every field the driver reads, so a load is a missing field.
    raise AssertionError("instance field %s not set (would load from Nova's DB)" % attrname)


objects.Instance.obj_load_attr = _no_lazy_load


class VirtAPI:
    """nova-compute's virt API: nothing the ironic driver calls here."""

    def exit_wait_early(self, events):
        pass


# ---- helpers ----

FAILED = []


def check(step, cond, what):
    if not cond:
        print("FAIL %s: %s" % (step, what), flush=True)
        FAILED.append(step)


def api(method, path, body=None):
    headers = {"X-OpenStack-Ironic-API-Version": "1.78"}
    if os.environ.get("FERRIC_TOKEN"):
        headers["X-Auth-Token"] = os.environ["FERRIC_TOKEN"]
    r = requests.request(method, FERRIC + path, json=body, headers=headers)
    return r.status_code, (r.json() if r.content else None)


def node(ident):
    return api("GET", "/v1/nodes/" + ident)[1]


def vifs(ident):
    return [v["id"] for v in api("GET", "/v1/nodes/%s/vifs" % ident)[1]["vifs"]]


def raises(fn, exc):
    try:
        fn()
    except exc as e:
        return e
    except Exception as e:  # the wrong exception
        return "unexpected %s: %s" % (type(e).__name__, e)
    return None


CTX = nova_context.get_admin_context()


def flavor(traits=()):
    specs = {"resources:CUSTOM_BAREMETAL_GOLD": "1", "resources:VCPU": "0",
             "resources:MEMORY_MB": "0", "resources:DISK_GB": "0"}
    for t in traits:
        specs["trait:" + t] = "required"
    return objects.Flavor(flavorid="bm-gold", name="bm.gold", memory_mb=4096,
                          vcpus=2, root_gb=10, ephemeral_gb=0, swap=0,
                          extra_specs=specs)


def instance(node_uuid, name, fl=None):
    inst = objects.Instance(context=CTX)
    inst.uuid = str(uuid.uuid4())
    inst.id = abs(hash(inst.uuid)) % 100000
    inst.node = node_uuid
    inst.host = HOST
    inst.display_name = name
    inst.hostname = name
    inst.project_id = "p1"
    inst.user_id = "u1"
    inst.flavor = fl or flavor()
    inst.image_ref = IMAGE.id
    inst.config_drive = "True"
    inst.metadata = {"role": "test"}
    inst.system_metadata = {}
    inst.user_data = None
    inst.key_data = None
    inst.key_name = None
    inst.keypairs = objects.KeyPairList(objects=[])
    inst.ec2_ids = objects.EC2Ids(instance_id="i-%08x" % inst.id, ami_id="ami-00000001",
                                  kernel_id=None, ramdisk_id=None)
    inst.device_metadata = None
    inst.numa_topology = None
    inst.launch_index = 0
    inst.reservation_id = "r-1"
    inst.availability_zone = "nova"
    inst.root_device_name = "/dev/sda"
    inst.default_ephemeral_device = None
    inst.default_swap_device = None
    inst.kernel_id = ""
    inst.ramdisk_id = ""
    inst.os_type = None
    inst.architecture = None
    inst.vm_mode = None
    inst.access_ip_v4 = None
    inst.access_ip_v6 = None
    inst.launched_at = None
    inst.launched_on = HOST
    inst.locked = False
    inst.tags = objects.TagList(objects=[])
    inst.trusted_certs = None
    inst.pci_devices = objects.PciDeviceList(objects=[])
    inst.services = objects.ServiceList(objects=[])
    inst.ephemeral_key_uuid = None
    inst.vcpu_model = None
    inst.migration_context = None
    inst.resources = None
    inst.vm_state = vm_states.BUILDING
    inst.task_state = task_states.SPAWNING
    inst.info_cache = objects.InstanceInfoCache(network_info=network_model.NetworkInfo())
    inst.obj_reset_changes()
    return inst


def network_info(n):
    out = []
    for i in range(n):
        subnet = network_model.Subnet(
            cidr="192.0.2.0/24", gateway=network_model.IP(address="192.0.2.1", type="gateway"),
            ips=[network_model.FixedIP(address="192.0.2.%d" % (10 + i))], dns=[], routes=[])
        net = network_model.Network(id=str(uuid.uuid4()), bridge="br-int", label="tenant%d" % i,
                                    subnets=[subnet], meta={"mtu": 1500})
        out.append(network_model.VIF(id=str(uuid.uuid4()), address="fa:16:3e:00:00:%02x" % i,
                                     network=net, type="other", details={}, vnic_type="baremetal"))
    return network_model.NetworkInfo(out)


IMAGE = objects.ImageMeta.from_dict({"id": "0b6a1c7e-3f07-4a1e-9d24-6b0c6d1d6b01",
                                     "name": "test-os", "disk_format": "raw",
                                     "container_format": "bare", "properties": {}})

TIMES = []


def step(name):
    def deco(fn):
        start = time.monotonic()
        try:
            fn()
        except Exception as e:  # a failed step is a failure, not a crash
            import traceback
            traceback.print_exc()
            check(name, False, "%s: %s" % (type(e).__name__, e))
        secs = time.monotonic() - start
        TIMES.append((name, secs))
        print("STEP %s %.3f" % (name, secs), flush=True)
        return fn
    return deco


# ---- nova-compute's sequence ----

drv = ironic_driver.IronicDriver(VirtAPI())
flat, noop, spare = NODES["flat"], NODES["noop"], NODES["spare"]
allnodes = {flat, noop, spare}
group = NODES["group"]


@step("init_host")
def _():
    drv.init_host(HOST)
    check("init_host", HOST in drv.hash_ring.nodes, "hash ring %s" % drv.hash_ring.nodes)


@step("get_available_nodes")
def _():
    got = set(drv.get_available_nodes())
    check("get_available_nodes", got == allnodes, "nodes %s, want %s" % (got, allnodes))


@step("get_available_nodes_partition_key")
def _():
    CONF.set_override("partition_key", group, group="ironic")
    CONF.set_override("peer_list", [HOST], group="ironic")
    got = set(drv.get_available_nodes())
    check("partition_key", got == allnodes, "group %s: %s" % (group, got))
    CONF.set_override("partition_key", "another-group", group="ironic")
    got = set(drv.get_available_nodes())
    check("partition_key", got == set(), "another group: %s" % got)
    CONF.clear_override("partition_key", group="ironic")
    CONF.clear_override("peer_list", group="ironic")
    drv.get_available_nodes()


def inventory(nodename):
    tree = provider_tree.ProviderTree()
    tree.new_root(nodename, nodename)
    drv.update_provider_tree(tree, nodename)
    data = tree.data(nodename)
    return data.inventory, set(data.traits)


@step("update_provider_tree")
def _():
    for n in allnodes:
        inv, traits = inventory(n)
        want = {"CUSTOM_BAREMETAL_GOLD": {"total": 1, "reserved": 0, "min_unit": 1, "max_unit": 1,
                                          "step_size": 1, "allocation_ratio": 1.0}}
        check("update_provider_tree", inv == want, "%s inventory %s" % (n, inv))
        check("update_provider_tree", traits == set(node(n)["traits"]), "%s traits %s" % (n, traits))


A = instance(flat, "vm-a")
B = instance(flat, "vm-b")


@step("claim")
def _():
    stale = drv._get_node(flat)  # another compute's view before the claim
    drv.prepare_for_spawn(A)
    MANAGED.add(A.uuid)
    check("claim", node(flat)["instance_uuid"] == A.uuid, "instance_uuid %s" % node(flat)["instance_uuid"])
    # B's compute saw the node free, and lost the race.
    e = raises(lambda: drv._set_instance_id(stale, B), exception.InstanceDeployFailure)
    check("claim", isinstance(e, exception.InstanceDeployFailure), "lost race: %s" % e)
    # B's compute sees it taken.
    e = raises(lambda: drv.prepare_for_spawn(B), exception.ComputeResourcesUnavailable)
    check("claim", isinstance(e, exception.ComputeResourcesUnavailable), "claimed node: %s" % e)
    check("claim", node(flat)["instance_uuid"] == A.uuid, "instance_uuid after race %s" % node(flat)["instance_uuid"])


NET_A = network_info(2)


@step("vif_attach")
def _():
    one = network_info(1)
    C = instance(noop, "vm-c")
    drv.prepare_networks_before_block_device_mapping(C, one)
    check("vif_attach", vifs(noop) == [], "noop keeps no VIF: %s" % vifs(noop))
    many = network_info(3)
    drv.prepare_networks_before_block_device_mapping(C, many)  # noop: one port, three VIFs
    check("vif_attach", vifs(noop) == [], "noop, several VIFs: %s" % vifs(noop))
    drv.clean_networks_preparation(C, many)
    # flat: two ports, two VIFs.
    drv.prepare_networks_before_block_device_mapping(A, NET_A)
    want = sorted(v["id"] for v in NET_A)
    check("vif_attach", sorted(vifs(flat)) == want, "flat VIFs %s, want %s" % (vifs(flat), want))
    # Attaching them again is a conflict Nova ignores.
    drv.prepare_networks_before_block_device_mapping(A, NET_A)
    # A third VIF finds no free port, as on Ironic.
    e = raises(lambda: drv.prepare_networks_before_block_device_mapping(A, network_info(1)),
               exception.VirtualInterfacePlugException)
    check("vif_attach", isinstance(e, exception.VirtualInterfacePlugException) and "not enough free physical ports" in str(e),
          "third VIF on two ports: %s" % e)


@step("spawn")
def _():
    drv.spawn(CTX, A, IMAGE, [("/etc/motd", b"hello from nova\n")], "s3cr3t-admin", {}, NET_A)
    n = node(flat)
    check("spawn", n["provision_state"] == "active" and n["instance_uuid"] == A.uuid,
          "node %s %s" % (n["provision_state"], n["instance_uuid"]))
    ii = n["instance_info"]
    check("spawn", ii.get("image_source") == IMAGE.id and ii.get("display_name") == "vm-a"
          and ii.get("configdrive") == "******", "instance_info %s" % ii)


@step("get_info")
def _():
    info = drv.get_info(A, use_cache=False)
    check("get_info", info.state == power_state.RUNNING, "state %s" % info.state)
    check("get_info", drv.instance_exists(A) and A.uuid in drv.list_instance_uuids(), "instance listed")


@step("reboot_soft")
def _():
    drv.reboot(CTX, A, NET_A, "SOFT")
    check("reboot_soft", node(flat)["power_state"] == "power on", "power %s" % node(flat)["power_state"])


@step("reboot_hard")
def _():
    drv.reboot(CTX, A, NET_A, "HARD")
    check("reboot_hard", node(flat)["power_state"] == "power on", "power %s" % node(flat)["power_state"])


@step("power_off")
def _():
    drv.power_off(A)
    check("power_off", drv.get_info(A, use_cache=False).state == power_state.SHUTDOWN, "state")


@step("power_on")
def _():
    drv.power_on(CTX, A, NET_A)
    check("power_on", drv.get_info(A, use_cache=False).state == power_state.RUNNING, "state")


@step("rescue")
def _():
    drv.rescue(CTX, A, NET_A, IMAGE, "rescue-pw", None)
    check("rescue", node(flat)["provision_state"] == "rescue", "state %s" % node(flat)["provision_state"])


@step("unrescue")
def _():
    drv.unrescue(CTX, A)
    check("unrescue", node(flat)["provision_state"] == "active", "state %s" % node(flat)["provision_state"])


@step("rebuild")
def _():
    A.task_state = task_states.REBUILDING
    drv.rebuild(CTX, A, IMAGE, [], "new-admin", {}, [], None, None, network_info=NET_A)
    n = node(flat)
    check("rebuild", n["provision_state"] == "active" and n["instance_uuid"] == A.uuid,
          "node %s %s" % (n["provision_state"], n["instance_uuid"]))


@step("destroy")
def _():
    A.task_state = task_states.DELETING
    drv.destroy(CTX, A, NET_A)
    MANAGED.discard(A.uuid)
    n = node(flat)
    check("destroy", n["instance_uuid"] is None and n["provision_state"] in ("cleaning", "available"),
          "node %s %s" % (n["provision_state"], n["instance_uuid"]))
    check("destroy", vifs(flat) == [], "VIFs left %s" % vifs(flat))
    check("destroy", not drv.instance_exists(A), "instance still exists")


def wait_available(n, step_name):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if node(n)["provision_state"] == "available":
            return
        time.sleep(0.5)
    check(step_name, False, "node %s not available: %s" % (n, node(n)["provision_state"]))


@step("validation_failure")
def _():
    wait_available(flat, "validation_failure")
    D = instance(flat, "vm-d", flavor(traits=["CUSTOM_NVME"]))
    drv.prepare_for_spawn(D)
    MANAGED.add(D.uuid)
    e = raises(lambda: drv.spawn(CTX, D, IMAGE, [], None, {}, network_info(0)), exception.ValidationError)
    check("validation_failure", isinstance(e, exception.ValidationError)
          and "Cannot specify instance traits that are not also set on the node" in str(e), "spawn: %s" % e)
    n = node(flat)
    check("validation_failure", n["provision_state"] == "available" and n["instance_uuid"] is None
          and not n["instance_info"], "node after cleanup %s %s %s" % (n["provision_state"], n["instance_uuid"], n["instance_info"]))
    MANAGED.discard(D.uuid)


@step("maintenance_before_claim")
def _():
    api("PUT", "/v1/nodes/%s/maintenance" % spare, {"reason": "disk check"})
    drv.get_available_nodes()
    inv, _ = inventory(spare)
    check("maintenance_before_claim", inv["CUSTOM_BAREMETAL_GOLD"]["reserved"] == 1, "inventory %s" % inv)
    E = instance(spare, "vm-e")
    e = raises(lambda: drv.prepare_for_spawn(E), exception.ComputeResourcesUnavailable)
    check("maintenance_before_claim", isinstance(e, exception.ComputeResourcesUnavailable), "claim: %s" % e)
    check("maintenance_before_claim", node(spare)["instance_uuid"] is None, "claimed")
    api("DELETE", "/v1/nodes/%s/maintenance" % spare)


@step("maintenance_after_claim")
def _():
    F = instance(spare, "vm-f")
    drv.prepare_for_spawn(F)
    MANAGED.add(F.uuid)
    api("PUT", "/v1/nodes/%s/maintenance" % spare, {"reason": "fan"})
    drv.get_available_nodes()
    inv, _ = inventory(spare)
    check("maintenance_after_claim", inv["CUSTOM_BAREMETAL_GOLD"]["reserved"] == 1, "inventory %s" % inv)
    import traceback
    try:
        drv.spawn(CTX, F, IMAGE, [], None, {}, network_info(1))
        e = None
    except Exception as ex:
        traceback.print_exc()
        e = ex
    print("INFO spawn on a node in maintenance: %s: %s" % (type(e).__name__, e), flush=True)
    check("maintenance_after_claim", e is not None and not isinstance(e, str) and "maintenance" in str(e),
          "spawn on a node in maintenance: %s" % e)
    n = node(spare)
    check("maintenance_after_claim", n["provision_state"] == "available" and n["instance_uuid"] is None,
          "node after failed spawn (%s) %s %s" % (e, n["provision_state"], n["instance_uuid"]))
    MANAGED.discard(F.uuid)
    api("DELETE", "/v1/nodes/%s/maintenance" % spare)


print("TIMES " + json.dumps(TIMES), flush=True)
sys.exit(1 if FAILED else 0)
