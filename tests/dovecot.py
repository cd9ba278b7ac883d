"""A throwaway IMAP server for tests: Debian's Dovecot with a static test user, Maildirs in a temp
dir, listening on loopback on free ports (IMAP with STARTTLS, and IMAPS), stopped and deleted
afterwards. Dovecot runs unprivileged: as the current user, or as `nobody` when that is root."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={base}/home/%u
}}
mail_location = maildir:{base}/mail/%u
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@dataclass
class Server:
    host: str
    port: int
    tls_port: int | None
    user: str
    password: str
    cafile: str | None
    log: Path

    def url(self, mailbox: str = "INBOX", *, tls: bool = False, query: str = "") -> str:
        scheme, port = ("imaps", self.tls_port) if tls else ("imap", self.port)
        return f"{scheme}://{self.user}@{self.host}:{port}/{mailbox}" + (f"?{query}" if query else "")

    @contextmanager
    def session(self, mailbox: str = "INBOX") -> Iterator[imaplib.IMAP4]:
        connection = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            connection.login(self.user, self.password)
            connection.create(mailbox)  # NO if it exists: fine
            status, _ = connection.select(mailbox)
            assert status == "OK"
            yield connection
        finally:
            connection.logout()

    def append(self, raw: bytes, mailbox: str = "INBOX") -> int:
        """Store a message; returns its UID."""
        data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with self.session(mailbox) as connection:
            status, response = connection.append(mailbox, None, None, data)
            assert status == "OK", response
            # [APPENDUID <uidvalidity> <uid>]
            return int(response[0].split(b"APPENDUID ")[1].split(b"]")[0].split()[1])

    def expunge(self, uid: int, mailbox: str = "INBOX") -> None:
        with self.session(mailbox) as connection:
            connection.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
            connection.expunge()

    def recreate(self, mailbox: str) -> None:
        """Delete and create a mailbox again: it gets a new UIDVALIDITY."""
        with self.session("INBOX") as connection:
            connection.delete(mailbox)
            connection.create(mailbox)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def _stop(pid_file: Path) -> None:
    """Stop the master process this fixture started (its children follow it)."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _certificate(folder: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 and localhost (cryptography comes with pdfminer)."""
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key_file


@contextmanager
def running_dovecot(*, tls: bool = False, password: str = "imap-test-pw") -> Iterator[Server]:
    if not os.path.exists(DOVECOT):
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd; .ci/run does)")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start Dovecot unprivileged")
    account = pwd.getpwnam("nobody") if as_root else pwd.getpwuid(os.geteuid())
    user, group = account.pw_name, grp.getgrgid(account.pw_gid).gr_name
    prefix = ["runuser", "-u", user, "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="memex-imap-"))
    base.chmod(0o755)
    ssl = "ssl = no"
    cafile = None
    if tls:
        pair = _certificate(base)
        if pair is None:
            shutil.rmtree(base, ignore_errors=True)
            pytest.skip("the cryptography package is missing: cannot make a certificate for the TLS test")
        cert, key = pair
        ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"
        cafile = str(cert)
    port, tls_port = _free_port(), _free_port()
    config = base / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            base=base, ssl=ssl, user=user, group=group, password=password, port=port,
            tls_port=tls_port if tls else 0,
        )
    )  # fmt: skip
    for folder in ("run", "state", "home", "mail"):
        (base / folder).mkdir()
    if as_root:
        for path in [base, *base.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid)
    started = False
    try:
        # Dovecot forks into the background; its children must not hold our pipes open.
        with open(base / "start.log", "wb") as output:
            result = subprocess.run(
                [*prefix, DOVECOT, "-c", str(config)], stdout=output, stderr=subprocess.STDOUT, timeout=60
            )
        started = result.returncode == 0
        log = base / "dovecot.log"
        if not started or not _wait_for(port) or (tls and not _wait_for(tls_port)):
            text = "".join(p.read_text(errors="replace") for p in (base / "start.log", log) if p.exists())
            raise RuntimeError(f"Dovecot did not start:\n{text}")
        yield Server("127.0.0.1", port, tls_port if tls else None, "tester", password, cafile, log)
    finally:
        if started:
            _stop(base / "run" / "master.pid")
        shutil.rmtree(base, ignore_errors=True)
