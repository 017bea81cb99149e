import re
from pathlib import Path

import pytest

from broker.mosquitto import TlsListener, render_config


def test_requiring_client_certificates_needs_a_ca_to_check_them_against() -> None:
    with pytest.raises(ValueError, match="require_client_cert needs a ca_file"):
        TlsListener(Path("server.pem"), Path("server-key.pem"), require_client_cert=True)


def test_a_certificate_path_mosquitto_conf_cannot_hold_is_named(tmp_path: Path) -> None:
    tls = TlsListener(Path("/etc/my certs/server.pem"), tmp_path / "server-key.pem")
    with pytest.raises(ValueError, match=re.escape("'/etc/my certs/server.pem'")):
        render_config(port=8883, workdir=tmp_path, password_file=tmp_path / "passwd", tls=tls)
