"""Conformance of the loopback emulator and midcore-sign with the official
Azure SDK for Python (azure-identity and azure-keyvault-keys).

The SDK reaches the emulator through its own transport settings. It trusts the
emulator's CA through `connection_verify` and uses its authority with instance
discovery disabled. A name-resolution override maps the reserved `.test` host
names to 127.0.0.1, so nothing resolves through DNS.

Binaries come from MIDCORE_BIN_DIR (default: the workspace's target/debug,
or $CARGO_TARGET_DIR/debug).
"""

import base64
import hashlib
import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

REPOSITORY = Path(__file__).resolve().parents[2]
_original_getaddrinfo = socket.getaddrinfo


def _loopback_for_test_domain(host, *args, **kwargs):
    """Resolve every `.test` host name to 127.0.0.1 and reject any other name,
    so a request to a real Azure host fails the test instead of leaving loopback."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name.endswith(".test"):
        name = "127.0.0.1"
    if name not in (None, "127.0.0.1", "::1", "localhost"):
        raise socket.gaierror(socket.EAI_NONAME, f"{name} is not a loopback test host")
    return _original_getaddrinfo(name, *args, **kwargs)


def bin_dir() -> Path:
    if os.environ.get("MIDCORE_BIN_DIR"):
        return Path(os.environ["MIDCORE_BIN_DIR"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPOSITORY / "target"))
    return target / "debug"


def binary(name: str) -> Path:
    path = bin_dir() / name
    if not path.exists():
        pytest.fail(f"{path} is not built: run `cargo build -p midcore-e2e --bins` and "
                    "`cargo build -p midcore-signer --features azure --bins` first")
    return path


@pytest.fixture(scope="module")
def emulator():
    socket.getaddrinfo = _loopback_for_test_domain
    os.environ["NO_PROXY"] = "*"
    state = tempfile.TemporaryDirectory()
    process = subprocess.Popen(
        [str(binary("midcore-azure-emulator")), "--listen", "127.0.0.1:0", "--state-dir", state.name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line, "the emulator printed no startup line"
        info = json.loads(line)
        yield info
    finally:
        process.terminate()
        process.wait(timeout=10)
        socket.getaddrinfo = _original_getaddrinfo
        state.cleanup()


def credential(info):
    return ClientSecretCredential(
        info["tenant_id"],
        info["client_id"],
        info["client_secret"],
        authority=info["authority_url"],
        disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
    )


def key_client(info):
    return KeyClient(info["vault_url"], credential(info), connection_verify=info["ca_cert"])


def public_key(key):
    numbers = rsa.RSAPublicNumbers(int.from_bytes(key.key.e, "big"), int.from_bytes(key.key.n, "big"))
    return numbers.public_key()


PSS_32 = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def test_created_key_reads_back(emulator):
    client = key_client(emulator)
    created = client.create_rsa_key("py-created", size=3072, hardware_protected=True)
    read = client.get_key("py-created")
    assert read.id == created.id
    assert read.key_type == "RSA-HSM"
    assert public_key(read).key_size == 3072


def test_rotation_lists_every_version(emulator):
    client = key_client(emulator)
    client.create_rsa_key("py-rotated", size=2048)
    client.rotate_key("py-rotated")
    client.rotate_key("py-rotated")
    versions = list(client.list_properties_of_key_versions("py-rotated"))
    assert len(versions) == 3


def test_vault_signature_verifies_locally_and_remotely(emulator):
    client = key_client(emulator)
    key = client.create_rsa_key("py-sign", size=2048, key_operations=["sign", "verify"])
    crypto = CryptographyClient(key.id, credential(emulator), connection_verify=emulator["ca_cert"])
    digest = hashlib.sha256(b"conformance").digest()
    signed = crypto.sign(SignatureAlgorithm.ps256, digest)
    assert signed.key_id == key.id
    public_key(key).verify(signed.signature, b"conformance", PSS_32, hashes.SHA256())
    assert crypto.verify(SignatureAlgorithm.ps256, digest, signed.signature).is_valid


def test_tampered_signature_fails_vault_verify(emulator):
    client = key_client(emulator)
    key = client.create_rsa_key("py-verify", size=2048, key_operations=["sign", "verify"])
    crypto = CryptographyClient(key.id, credential(emulator), connection_verify=emulator["ca_cert"])
    digest = hashlib.sha256(b"conformance").digest()
    signature = bytearray(crypto.sign(SignatureAlgorithm.ps256, digest).signature)
    signature[-1] ^= 1
    assert not crypto.verify(SignatureAlgorithm.ps256, digest, bytes(signature)).is_valid


def test_short_digest_is_bad_parameter(emulator):
    client = key_client(emulator)
    key = client.create_rsa_key("py-short", size=2048, key_operations=["sign", "verify"])
    crypto = CryptographyClient(key.id, credential(emulator), connection_verify=emulator["ca_cert"])
    with pytest.raises(HttpResponseError) as raised:
        crypto.sign(SignatureAlgorithm.ps256, b"\x00" * 31)
    assert raised.value.status_code == 400
    assert raised.value.error.code == "BadParameter"


def test_missing_key_is_key_not_found(emulator):
    with pytest.raises(HttpResponseError) as raised:
        key_client(emulator).get_key("py-absent")
    assert raised.value.status_code == 404
    assert raised.value.error.code == "KeyNotFound"


def test_midcore_sign_sidecar_verifies_with_sdk_key(emulator, tmp_path):
    client = key_client(emulator)
    key = client.create_rsa_key("py-release", size=3072, hardware_protected=True)

    bundle = tmp_path / "resources"
    (bundle / "runners").mkdir(parents=True)
    module_bytes = b"\x00asm\x01\x00\x00\x00"
    (bundle / "runners" / "echo.wasm").write_bytes(module_bytes)
    (bundle / "readme.txt").write_text("conformance\n")

    resolve = ",".join(f"{host}=127.0.0.1" for host in emulator["resolve"])
    env = {
        "PATH": "/usr/bin:/bin",
        "NO_PROXY": "*",
        "AZURE_TENANT_ID": emulator["tenant_id"],
        "AZURE_CLIENT_ID": emulator["client_id"],
        "AZURE_CLIENT_SECRET": emulator["client_secret"],
        "AZURE_AUTHORITY_HOST": emulator["authority_url"],
        "MIDCORE_AZURE_CA_FILE": emulator["ca_cert"],
        "MIDCORE_AZURE_RESOLVE": resolve,
    }
    reference = emulator["key_reference_prefix"] + "py-release"
    result = subprocess.run(
        [str(binary("midcore-sign")), "sign", str(bundle), "--key", reference, "--auth", "client-secret",
         "--product", "conformance", "--version", "1.0.0"],
        env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr

    sidecar = json.loads((bundle / "runners" / "echo.wasm.sig").read_text())
    signature = base64.b64decode(sidecar["signature"])
    sdk_key = public_key(client.get_key("py-release"))
    sdk_key.verify(signature, module_bytes, PSS_32, hashes.SHA256())
    with pytest.raises(InvalidSignature):
        sdk_key.verify(signature, module_bytes + b"\x00", PSS_32, hashes.SHA256())
    assert key.id.rsplit("/", 1)[0] in client.get_key("py-release").id


def test_sign_needs_sign_operation(emulator):
    client = key_client(emulator)
    key = client.create_rsa_key("py-verify-only", size=2048, key_operations=["verify"])
    crypto = CryptographyClient(key.id, credential(emulator), connection_verify=emulator["ca_cert"])
    with pytest.raises(HttpResponseError) as raised:
        crypto.sign(SignatureAlgorithm.ps256, hashlib.sha256(b"x").digest())
    assert raised.value.status_code == 403
