"""Where amqtt 0.12.1 breaks the contract: each an `xfail(strict=True)`, so a fix turns it red.

Read in amqtt/broker.py of 0.12.1.
"""

import pytest

AMQTT_UPGRADES_QOS = pytest.mark.xfail(
    strict=True,
    reason="amqtt 0.12.1 delivers at the subscription's QoS, not the minimum MQTT-3.8.4-6 asks "
    "for (_run_broadcast: qos = broadcast.get('qos', sub_qos); field notes §1)",
)
