"""hotport.model: the network info of a VM, as pure immutable values.

Owns: `IP`, `FixedIP`, `Route`, `Subnet`, `Network`, `VIF`, `NetworkInfo` (JSON round trip
in the network_info layout OpenStack Nova stores), `devname`, `ModelError`, the frozen
JSON helpers, and the builder `build_vif` / `vif_revision` (Neutron v2.0 dicts -> VIF).

Must never: do I/O (no HTTP, SQL, libvirt), or import other hotport packages: every other
package may import this one.

Concurrency: every value is immutable (frozen dataclasses, tuples, read-only mappings):
safe to share between tasks and threads without locks.
"""

from hotport.model.build import TUNNELED_NETWORK_TYPES, build_vif, vif_revision
from hotport.model.errors import ModelError
from hotport.model.frozen import EMPTY, FrozenDict, freeze, thaw
from hotport.model.netinfo import NetworkInfo
from hotport.model.values import IP, NO_GATEWAY, FixedIP, Network, Route, Subnet
from hotport.model.vif import NIC_NAME_LEN, VIF, devname

__all__ = [
    "EMPTY",
    "IP",
    "NIC_NAME_LEN",
    "NO_GATEWAY",
    "TUNNELED_NETWORK_TYPES",
    "VIF",
    "FixedIP",
    "FrozenDict",
    "ModelError",
    "Network",
    "NetworkInfo",
    "Route",
    "Subnet",
    "build_vif",
    "devname",
    "freeze",
    "thaw",
    "vif_revision",
]
