"""Allowed IP ranges per token: set in the create form (validated), shown on the list and the
token's page, enforced by the API and the Codex gateway (403 ip_not_allowed), counted by the
throttle, with the last refused address on the token's page."""

import pytest
from django.utils import timezone

from tokens.models import AccessToken, Run

from .factories import make_token, row_of

LIST = "/w/acme/admin/access-tokens/"
WHOAMI = "/api/v1/whoami"
RUNS = "/api/v1/runs"


def create(client, allowed_ips, name="ci"):
    return client.post(LIST + "new/", {"name": name, "expiration": "30", "allowed_ips": allowed_ips,
                                       "request_key": f"key-{name}-{allowed_ips}"})


@pytest.mark.parametrize("typed,stored", [
    ("", ""),
    ("203.0.113.7", "203.0.113.7/32"),
    ("10.0.0.0/8, 192.168.1.0/24", "10.0.0.0/8\n192.168.1.0/24"),
    ("10.0.0.0/8\n2001:db8::/48\n", "10.0.0.0/8\n2001:db8::/48"),
    ("2001:DB8::1", "2001:db8::1/128"),
    ("10.1.2.3/8", "10.0.0.0/8"),  # host bits dropped, as a network
    ("10.0.0.0/8, 10.0.0.0/8", "10.0.0.0/8"),
])
def test_the_form_takes_addresses_and_ranges(client, owner, typed, stored):
    client.force_login(owner.user)
    assert create(client, typed).status_code == 201
    assert AccessToken.objects.get().allowed_ips == stored


@pytest.mark.parametrize("typed,error", [
    ("10.0.0.300", "“10.0.0.300” is not an IP address or a CIDR range"),
    ("10.0.0.0/33", "is not an IP address or a CIDR range"),
    ("example.com", "is not an IP address or a CIDR range"),
    ("10.0.0.1, 10.0.0.2\n10.0.0.3", "Separate the ranges with commas or with new lines, not both."),
    (", ".join(f"10.0.0.{n}" for n in range(21)), "At most 20 ranges: you gave 21."),
])
def test_bad_ranges_get_a_clear_field_error_and_create_nothing(client, owner, typed, error):
    client.force_login(owner.user)
    response = create(client, typed)
    assert response.status_code == 400
    page = response.content.decode()
    assert error in page
    assert 'id="id_allowed_ips_helptext"' in page  # the field says what it takes
    assert not AccessToken.objects.exists()


def test_the_modal_and_the_plain_page_both_have_the_field(client, owner):
    client.force_login(owner.user)
    for url in (LIST, LIST + "new/"):
        assert 'name="allowed_ips"' in client.get(url).content.decode()


def test_ranges_show_on_the_list_and_the_tokens_page(client, owner):
    token, _ = make_token(owner, allowed_ips="10.0.0.0/8\n2001:db8::/48")
    anywhere, _ = make_token(owner)
    client.force_login(owner.user)
    detail = client.get(f"{LIST}{token.pk}/").content.decode()
    assert "10.0.0.0/8" in detail and "2001:db8::/48" in detail
    assert "Anywhere" in client.get(f"{LIST}{anywhere.pk}/").content.decode()
    row = row_of(client.get(LIST), token)
    assert "Only from" in row and "10.0.0.0/8" in row and "2001:db8::/48" in row
    assert "Only from" not in row_of(client.get(LIST), anywhere)


@pytest.mark.parametrize("endpoint", [WHOAMI, RUNS, "/codex/auth/v1/user-auth-credential/whoami"])
@pytest.mark.parametrize("address,allowed", [
    ("10.1.2.3", True), ("192.0.2.1", False),
    ("2001:db8:0:1::5", True), ("2001:db9::1", False),
])
def test_calls_from_outside_are_refused(client, owner, endpoint, address, allowed):
    token, plaintext = make_token(owner, allowed_ips="10.0.0.0/8\n2001:db8::/48")
    call = client.post if endpoint == RUNS else client.get
    response = call(endpoint, HTTP_AUTHORIZATION=f"Bearer {plaintext}", REMOTE_ADDR=address)
    if allowed:
        assert response.status_code in (200, 201)
        return
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ip_not_allowed"
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert not Run.objects.exists()
    token.refresh_from_db()
    assert token.last_refused_ip == address and token.last_refused_at is not None
    assert token.last_used_at is None


def test_an_ipv4_mapped_address_is_checked_as_ipv4(client, owner):
    _, plaintext = make_token(owner, allowed_ips="198.51.100.0/24")
    inside = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}",
                        REMOTE_ADDR="::ffff:198.51.100.7")
    assert inside.status_code == 200
    outside = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}",
                         REMOTE_ADDR="::ffff:192.0.2.1")
    assert outside.status_code == 403


def test_the_trusted_proxy_header_names_the_client(client, owner, settings):
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    _, plaintext = make_token(owner, allowed_ips="203.0.113.0/24")
    outside = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}", REMOTE_ADDR="10.0.0.1",
                         HTTP_X_FORWARDED_FOR="198.51.100.9, 192.0.2.44")
    assert outside.status_code == 403
    inside = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}", REMOTE_ADDR="10.0.0.1",
                        HTTP_X_FORWARDED_FOR="192.0.2.44, 203.0.113.9")
    assert inside.status_code == 200


def test_a_refusal_counts_toward_the_throttle(client, owner, settings):
    settings.API_FAILURE_LIMIT = 3
    fenced = [make_token(owner, allowed_ips="10.0.0.0/8")[1] for _ in range(4)]
    _, open_token = make_token(owner)
    for plaintext in fenced[:3]:
        assert client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 403
    throttled = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {fenced[3]}")
    assert throttled.status_code == 429
    # A token that may act from here is not refused for those failures.
    assert client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {open_token}").status_code == 200


def test_the_tokens_page_shows_the_last_refused_address(client, owner):
    token, plaintext = make_token(owner, allowed_ips="10.0.0.0/8")
    client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}", REMOTE_ADDR="198.51.100.23")
    client.force_login(owner.user)
    page = client.get(f"{LIST}{token.pk}/").content.decode()
    assert "Last refused" in page and "198.51.100.23" in page


def test_revoked_wins_over_the_address(client, owner):
    _, plaintext = make_token(owner, allowed_ips="10.0.0.0/8", revoked_at=timezone.now())
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.json()["error"]["code"] == "token_revoked"
