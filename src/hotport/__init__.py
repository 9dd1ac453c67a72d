"""hotport: hot-plug network ports into running VMs and keep their network-info cache true."""

__version__ = "0.1.0"
