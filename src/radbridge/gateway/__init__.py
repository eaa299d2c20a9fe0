"""The AI gateway: receive → spool → assemble → queue → run → outbox → deliver.

See ``docs/gateway.md`` and :class:`radbridge.gateway.service.Gateway`.
"""

from radbridge.gateway.config import GatewayConfig, load_gateway_config
from radbridge.gateway.service import Gateway

__all__ = ["Gateway", "GatewayConfig", "load_gateway_config"]
