"""Visitor ids: signed by this server, refused when forged or malformed, and the secret is made once, private."""

import stat

import pytest

from digitlab import identity


def test_a_signed_id_verifies_and_a_forged_one_does_not(tmp_path):
    secret = identity.load_secret(tmp_path / "visitor.key")
    visitor = identity.new_visitor()
    cookie = identity.sign(visitor, secret)
    assert identity.verify(cookie, secret) == visitor
    other = identity.load_secret(tmp_path / "other.key")
    assert identity.verify(cookie, other) is None  # another server's secret
    forged = identity.new_visitor() + cookie[16:]  # someone else's id with this signature
    for bad in (forged, visitor, visitor + ".", "", None, "../../etc." + cookie[17:], cookie + "x", 42):
        assert identity.verify(bad, secret) is None, bad


def test_the_secret_is_made_once_and_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "visitor.key"
    first = identity.load_secret(path)
    assert len(first) == 32 and identity.load_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="not a DigitLab secret; delete it to make a new one"):
        identity.load_secret(path)


def test_only_well_formed_ids_are_signed(tmp_path):
    with pytest.raises(ValueError, match="visitor must be 16 hex digits"):
        identity.sign("alice", identity.load_secret(tmp_path / "k"))


def test_a_network_is_one_ipv4_host_or_one_ipv6_slash_64_keyed_and_unknown_is_empty():
    secret, other = b"s" * 32, b"t" * 32
    net = identity.network_of
    assert net("203.0.113.5", secret) == net("::ffff:203.0.113.5", secret) != net("203.0.113.6", secret)
    assert net("2001:db8::1", secret) == net("2001:db8::ffff:1", secret) != net("2001:db8:0:1::1", secret)
    assert len(net("203.0.113.5", secret)) == 16  # 16 hex digits: the address itself is never kept
    assert net("203.0.113.5", secret) != net("203.0.113.5", other)  # keyed with this server's secret
    for unknown in (None, "", "localhost", "203.0.113.5, 198.51.100.7", "../etc"):
        assert net(unknown, secret) == "", unknown
