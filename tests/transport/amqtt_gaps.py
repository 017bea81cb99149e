"""Where amqtt 0.12.1 breaks the contract: each an `xfail(strict=True)`, so a fix turns it red.

Read in amqtt/broker.py of 0.12.1; only #401 has an upstream issue (Yakifo/amqtt searched).
"""

import pytest

AMQTT_401 = pytest.mark.xfail(
    strict=True,
    reason="Yakifo/amqtt#401: amqtt drops unacknowledged in-flight QoS 1 messages when a "
    "persistent session reconnects",
)
AMQTT_UPGRADES_QOS = pytest.mark.xfail(
    strict=True,
    reason="amqtt 0.12.1 delivers at the subscription's QoS, not the minimum MQTT-3.8.4-6 asks "
    "for (_run_broadcast: qos = broadcast.get('qos', sub_qos); field notes §1)",
)
AMQTT_KEEPS_A_CLEAN_TWIN = pytest.mark.xfail(
    strict=True,
    reason="amqtt 0.12.1: a clean CONNECT deletes the old session (_delete_session) and never "
    "closes its connection, so the older connection lives on",
)
AMQTT_TAKEOVER_SHARES_SESSION = pytest.mark.xfail(
    strict=True,
    reason="amqtt 0.12.1: the taken-over connection's _handle_disconnect runs on the Session the "
    "newer connection now has: it publishes that one's will and marks it disconnected, so the "
    "newer connection is sent nothing (as a drone reconnecting over a half-open link would be)",
)
