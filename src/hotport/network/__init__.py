"""hotport.network: the Neutron v2.0 REST client (async httpx, Keystone via keystoneauth1).

Owns: the public surface of the network client — `NeutronClient`, its auth providers,
typed resource models, the error tree and the configuration/factory. Modules:

- `errors`   the exception tree (see its docstring) and status/body -> error mapping
- `models`   frozen pydantic views of ports, networks, subnets, floating IPs
- `auth`     `AuthProvider`, `NoAuth`, `KeystoneAuth`
- `retry`    backoff, deadlines and which failures are retried
- `observe`  per-attempt records, counters, observers
- `client`   `NeutronClient`: one request per call, deadlines, retries
- `config`   `NetworkConfig` / `KeystoneConfig` / `ClientConfig`
- `factory`  `from_config`, `make_auth`

Must never: import the engine, store, virt or api packages (this is a leaf backend: the
engine reaches it through its own Protocol, the composition root builds it with
`from_config`); log tokens or passwords.

Concurrency: asyncio, one event loop per client; see each module.
"""

from hotport.network.auth import AuthProvider, KeystoneAuth, NoAuth
from hotport.network.client import NeutronClient
from hotport.network.config import ClientConfig, KeystoneConfig, NetworkConfig
from hotport.network.errors import (
    BadRequest,
    Conflict,
    ConflictError,
    DeadlineExceeded,
    FloatingIPNotFound,
    Forbidden,
    IpAddressInUse,
    MacAddressInUse,
    MalformedResponse,
    NetworkNotFound,
    NetworkServiceError,
    NotFound,
    PermanentError,
    PortInUse,
    PortNotFound,
    RevisionMismatch,
    SubnetNotFound,
    TransientError,
    Unauthorized,
    Unavailable,
)
from hotport.network.factory import from_config, make_auth
from hotport.network.models import (
    AllocationPool,
    FixedIP,
    FloatingIP,
    HostRoute,
    Network,
    PartialPort,
    Port,
    Subnet,
)
from hotport.network.observe import Observer, RequestRecord
from hotport.network.retry import Backoff

__all__ = [
    "AllocationPool",
    "AuthProvider",
    "Backoff",
    "BadRequest",
    "ClientConfig",
    "Conflict",
    "ConflictError",
    "DeadlineExceeded",
    "FixedIP",
    "FloatingIP",
    "FloatingIPNotFound",
    "Forbidden",
    "HostRoute",
    "IpAddressInUse",
    "KeystoneAuth",
    "KeystoneConfig",
    "MacAddressInUse",
    "MalformedResponse",
    "Network",
    "NetworkConfig",
    "NetworkNotFound",
    "NetworkServiceError",
    "NeutronClient",
    "NoAuth",
    "NotFound",
    "Observer",
    "PartialPort",
    "PermanentError",
    "Port",
    "PortInUse",
    "PortNotFound",
    "RequestRecord",
    "RevisionMismatch",
    "Subnet",
    "SubnetNotFound",
    "TransientError",
    "Unauthorized",
    "Unavailable",
    "from_config",
    "make_auth",
]
