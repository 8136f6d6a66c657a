"""The SSRF policy for outgoing requests: every spelling of an internal address is refused."""
from __future__ import annotations

import ipaddress

import pytest

from newsletter.config import ConfigError, build_config
from newsletter.services.webhooks import net_policy
from newsletter.services.webhooks.net_policy import Internal, Refused, Target, check_url, networks

INTERNAL_URLS = [
    # The probe's findings.
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://2852039166/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1:6379",
    "http://127.0.0.1/",
    # Other IPv4 spellings of loopback and metadata.
    "http://127.1/", "http://127.0.1/", "http://0x7f000001/", "http://0x7f.0x0.0x0.0x1/", "http://0177.0.0.01/",
    "http://017700000001/", "http://0xa9fea9fe/", "http://0251.0376.0251.0376/", "http://169.254.43518/",
    "http://127.0.0.1./", "http://１２７.０.０.１/", "http://0/", "http://0.0.0.0:8080/",
    # Private, CGNAT (Alibaba's metadata lives there), benchmarking, multicast, reserved, broadcast.
    "http://192.168.1.1/", "http://172.16.0.1/", "http://172.31.255.255/", "https://10.255.255.254/",
    "http://100.64.0.1/", "http://100.100.100.200/", "http://198.18.0.1/", "http://192.0.0.8/",
    "http://224.0.0.1/", "http://239.255.255.250:1900/", "http://240.0.0.1/", "http://255.255.255.255/",
    "http://192.0.2.1/", "http://203.0.113.9/",
    # IPv6: loopback, unspecified, link-local with a zone, ULA (AWS's IPv6 metadata), site-local, multicast.
    "http://[::1]/", "http://[0:0:0:0:0:0:0:1]:8080/", "http://[::]/", "http://[fe80::1%25eth0]/",
    "http://[fd00:ec2::254]/", "http://[fc00::1]/", "http://[fec0::1]/", "http://[ff02::1]/",
    # IPv6 forms that carry an internal IPv4 address: mapped, compatible, NAT64, 6to4, Teredo.
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/", "http://[::a9fe:a9fe]/", "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::10.0.0.1]/", "http://[64:ff9b:1::8.8.8.8]/", "http://[2002:a9fe:a9fe::1]/",
    "http://[2002:7f00:1::]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "http://[2001:db8::1]/",
    # Names: this machine and cloud metadata.
    "http://localhost/", "http://LOCALHOST:8080/", "http://localhost./", "http://api.localhost/",
    "http://ⓛocalhost/", "http://metadata/", "http://METADATA.GOOGLE.INTERNAL./", "http://metadata.goog/",
    "http://instance-data/", "http://instance-data.ec2.internal/",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_addresses_are_refused_in_every_spelling(url):
    with pytest.raises(Internal):
        check_url(url)


@pytest.mark.parametrize("url", [
    "ftp://example.com/x", "file:///etc/passwd", "gopher://example.com:6379/_INFO", "javascript:alert(1)",
    "example.com/hook", "https://", "", "http://user:pass@example.com/", "http://user@example.com/",
    "http://example.com@127.0.0.1/", "http://127.0.0.1\\@example.com/", "http://exa mple.com/",
    "http://example.com/\r\nX-Injected: 1", "http://example.com:99999/", "http://example.com:port/",
    "http://1.2.3.999999999999/", "http://1.2.3.4.5/", "http://0x1g.1.1.1/", "http://256.1.1.1/",
    "http://[::1/", "http://[1:2:3]/", "http://-bad-.example.com/", "http://exa%6dple.com/",
])
def test_malformed_or_non_http_urls_and_credentials_are_refused(url):
    with pytest.raises(Refused):
        check_url(url)


@pytest.mark.parametrize("url, host, port, path", [
    ("https://hooks.example.com/in?x=1#frag", "hooks.example.com", 443, "/in?x=1"),
    ("http://HOOKS.Example.com:8080", "hooks.example.com", 8080, "/"),
    ("https://bücher.example/h", "xn--bcher-kva.example", 443, "/h"),
    ("http://8.8.8.8/", "8.8.8.8", 80, "/"),
    ("http://134744072/", "8.8.8.8", 80, "/"),  # a public address in a strange spelling is still public
    ("https://[2606:4700:4700::1111]/h", "2606:4700:4700::1111", 443, "/h"),
    ("http://[64:ff9b::8.8.8.8]/", "64:ff9b::808:808", 80, "/"),  # NAT64 of a public address
    ("http://[::ffff:8.8.8.8]/", "::ffff:808:808", 80, "/"),
    ("https://metadata.example.com/", "metadata.example.com", 443, "/"),
    ("https://my-localhost.example.com/", "my-localhost.example.com", 443, "/"),
])
def test_public_receivers_pass_with_their_parts(url, host, port, path):
    target = check_url(url)
    assert (target.host, target.port, target.path) == (host, port, path)


def test_the_allow_list_admits_exactly_its_networks_in_any_spelling():
    allowed = networks(["127.0.0.1/32", "10.20.0.0/16"])
    for url in ("http://127.0.0.1:8000/", "http://2130706433/", "http://127.1/", "http://[::ffff:127.0.0.1]/",
                "http://10.20.3.4/", "http://[64:ff9b::10.20.3.4]/"):
        assert check_url(url, allowed).ip is not None, url
    for url in ("http://127.0.0.2/", "http://10.21.0.1/", "http://169.254.169.254/", "http://[::1]/"):
        with pytest.raises(Internal):
            check_url(url, allowed)
    with pytest.raises(Internal):  # names are refused by name, whatever they resolve to
        check_url("http://localhost/", allowed)


def test_a_name_is_refused_when_any_of_its_addresses_is_internal():
    public, private = ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")
    assert net_policy.vetted("a.example", [public]) == [public]
    with pytest.raises(Internal, match="10.0.0.7 is a private-network address"):
        net_policy.vetted("a.example", [public, private])
    assert net_policy.vetted("a.example", [public, private], networks(["10.0.0.0/24"])) == [public, private]


def test_resolving_a_name_checks_what_the_resolver_answers():
    # /etc/hosts answers for localhost: no DNS traffic leaves the machine.
    name = Target("http", "localhost", 80, "/", None)
    with pytest.raises(Internal, match="localhost resolves to a forbidden address"):
        net_policy.resolve(name)
    loopback = networks(["127.0.0.0/8", "::1/128"])
    assert all(ip.is_loopback for ip in net_policy.resolve(name, loopback))


def test_the_setting_is_parsed_and_checked_at_start_up():
    config = build_config({"NEWSLETTER_ENV": "testing", "SECRET_KEY": "x" * 32,
                           "WEBHOOK_ALLOWED_NETWORKS": " 10.1.2.0/24, 127.0.0.1 ,fd00::/8,"})
    assert config["WEBHOOK_ALLOWED_NETWORKS"] == ["10.1.2.0/24", "127.0.0.1/32", "fd00::/8"]
    empty = build_config({"NEWSLETTER_ENV": "testing", "SECRET_KEY": "x" * 32})
    assert empty["WEBHOOK_ALLOWED_NETWORKS"] == []
    with pytest.raises(ConfigError, match="WEBHOOK_ALLOWED_NETWORKS"):
        build_config({"NEWSLETTER_ENV": "testing", "SECRET_KEY": "x" * 32,
                      "WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8,intranet"})
