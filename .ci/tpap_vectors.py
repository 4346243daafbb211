#!/usr/bin/env python3
"""Prints the TPAP test vectors of src/kasa/tpap.rs from plugp100's own code.

Run with plugp100 6.0.2 installed (the interop gate's venv has it):
    target/interop-venv/bin/python .ci/tpap_vectors.py
Every input is fixed: the client's secret scalar by replacing
`secrets.randbelow` for the one call, the device's by choosing it here. The
device side (its share and confirmation) is computed here from the SPAKE2+
equations, because plugp100 is a client only; the client side, the password
pre-hashes, the key schedule and the sealing are plugp100's functions.
"""
import base64
import hashlib
import secrets
import sys
import types

from ecdsa import NIST256p, ellipticcurve

from plugp100.api.protocol.tpap.session import TpapEncryptionSession

USERNAME = "thermo@example.com"
PASSWORD = "hunter2"
MAC = "AA:BB:CC:DD:EE:FF"
USER_RANDOM = bytes(range(0, 32))
DEV_RANDOM = bytes(range(32, 64))
DEV_SALT = bytes(range(64, 80))
ITERATIONS = 1000
X_SCALAR = int.from_bytes(hashlib.sha256(b"client x").digest(), "big") % NIST256p.order
Y_SCALAR = int.from_bytes(hashlib.sha256(b"device y").digest(), "big") % NIST256p.order
START_SEQ = 7
REQUEST = b'{"method":"get_device_info"}'
REPLY = b'{"error_code":0,"result":{"device_on":true}}'

# (name, extra_crypt, cipher suite, encryption)
CASES = [
    ("md5crypt_s1_aes128", {"type": "password_shadow",
                            "params": {"passwd_id": 1, "passwd_prefix": "$1$abcdefgh$"}},
     1, "aes_128_ccm"),
    ("sha256crypt_s8_chacha", {"type": "password_shadow",
                               "params": {"passwd_id": 5, "passwd_prefix": "$5$saltsaltsaltsalt",
                                          "passwd_rounds": 5000}},
     8, "chacha20_poly1305"),
    ("plain_s2_aes256", None, 2, "aes_256_ccm"),
    ("sha256crypt_r1000_s9_aes128", {"type": "password_shadow",
                                     "params": {"passwd_id": 5,
                                                "passwd_prefix": "$5$rounds=1000$pepper"}},
     9, "aes_128_ccm"),
]


def transport():
    """The attributes of TpapProtocol that the session reads, nothing else."""
    t = types.SimpleNamespace(
        _ssl_context=None, _known_device_mac=MAC, _known_tpap_tls=0,
        _known_tpap_port=80, _known_tpap_dac=False, _known_tpap_pake=[2],
        _known_tpap_user_hash_type=0, _host="vectors",
        _credential=types.SimpleNamespace(username=USERNAME, password=PASSWORD),
    )
    t._get_initial_app_url = lambda: "http://vectors"
    return t


def point_bytes(p):
    return b"\x04" + p.x().to_bytes(32, "big") + p.y().to_bytes(32, "big")


def sec1_point(raw):
    return ellipticcurve.PointJacobi.from_bytes(NIST256p.curve, raw)


def run(name, extra, suite, encryption):
    s = TpapEncryptionSession(transport())
    s._device_mac = MAC
    s._tpap_pake = [2]
    s._user_random = base64.b64encode(USER_RANDOM).decode()
    cred = s._resolve_credentials({"extra_crypt": extra} if extra else {}, PASSWORD,
                                  passcode_type="userpw")
    a, b = s._derive_ab(cred.encode(), DEV_SALT, ITERATIONS, 32)
    order = NIST256p.order
    w0, w1 = a % order, b % order
    _, n_comp, _, _ = s._suite_parameters(suite)
    n_point = sec1_point(n_comp)
    dev_share_point = Y_SCALAR * NIST256p.generator + w0 * n_point
    dev_share = point_bytes(dev_share_point)
    register = {
        "dev_random": base64.b64encode(DEV_RANDOM).decode(),
        "dev_salt": base64.b64encode(DEV_SALT).decode(),
        "dev_share": base64.b64encode(dev_share).decode(),
        "cipher_suites": suite, "iterations": ITERATIONS, "encryption": encryption,
    }
    real = secrets.randbelow
    secrets.randbelow = lambda _n: X_SCALAR - 1
    try:
        share = s._build_share_params_from_register(register, cred)
    finally:
        secrets.randbelow = real
    key, nonce = s.key_nonce_from_shared(s._shared_key, s._cipher_id, s._hkdf_hash)
    s._establish_session_from_share_result(
        {"dev_confirm": s._expected_dev_confirm, "stok": "STOK", "start_seq": START_SEQ})
    sealed, seq = s.encrypt(REQUEST)
    assert seq == START_SEQ
    reply_ct, reply_tag = s.sec_encrypt(s._cipher_id, key, nonce, REPLY, START_SEQ)
    reply = START_SEQ.to_bytes(4, "big") + reply_ct + reply_tag
    assert s.decrypt(reply, START_SEQ) == REPLY
    out = {
        "credential": cred.encode(),
        "w0": w0.to_bytes(32, "big"), "w1": w1.to_bytes(32, "big"),
        "dev_share": dev_share,
        "user_share": base64.b64decode(share["user_share"]),
        "user_confirm": base64.b64decode(share["user_confirm"]),
        "dev_confirm": base64.b64decode(s._expected_dev_confirm),
        "shared_key": s._shared_key, "session_key": key, "base_nonce": nonce,
        "sealed_request": sealed, "sealed_reply": reply,
    }
    print(f"// {name}: suite {suite}, {encryption}, extra_crypt {extra}")
    for k, v in out.items():
        print(f"{name}.{k} = {v.hex()}")


def main():
    print(f"// x = {X_SCALAR:064x}")
    print(f"// y = {Y_SCALAR:064x}")
    for case in CASES:
        run(*case)
    mac_pass = TpapEncryptionSession._mac_pass_from_device_mac(MAC)
    print(f"default_passcode({MAC}) = {mac_pass}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
