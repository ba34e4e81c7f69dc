import pytest
from django.test import Client

from .factories import UserFactory


def test_it_signs_in_by_email(client, owner, password):
    response = client.post("/accounts/login/", {"username": "ALICE@acme.test", "password": password})
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # signed in: sent on to the workspace


def test_it_refuses_a_wrong_password(client, owner):
    response = client.post("/accounts/login/", {"username": "alice@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert b"do not match an account" in response.content
    assert "_auth_user_id" not in client.session


def test_the_sign_in_page_has_labelled_fields(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert 'name="username"' in page and 'name="password"' in page
    assert '<label for="id_username">Email' in page


def test_sign_out_is_a_post(client, owner):
    client.force_login(owner.user)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_password_change(client, owner, password):
    client.force_login(owner.user)
    assert client.get("/accounts/password_change/").status_code == 200
    response = client.post("/accounts/password_change/", {
        "old_password": password, "new_password1": "a-much-better-secret-42",
        "new_password2": "a-much-better-secret-42",
    })
    assert response.status_code == 302
    owner.user.refresh_from_db()
    assert owner.user.check_password("a-much-better-secret-42")


def test_emails_are_unique_whatever_their_case(db):
    from django.db import IntegrityError

    UserFactory(email="sam@example.test")
    with pytest.raises(IntegrityError):
        UserFactory(email="Sam@Example.test")


CHANGE = "/accounts/password_change/"


def change_password(client, old, new="a-much-better-secret-42", **extra):
    return client.post(CHANGE, {"old_password": old, "new_password1": new,
                                "new_password2": new}, **extra)


def test_wrong_old_passwords_count_as_failed_sign_ins(client, owner, password):
    """Ten wrong old passwords, then the page refuses even the right one (429), and so does
    sign-in for that email: one count."""
    client.force_login(owner.user)
    for _ in range(10):
        response = change_password(client, "not-my-password")
        assert response.status_code == 200
        assert b"Your old password was entered incorrectly" in response.content
    refused = change_password(client, password)
    assert refused.status_code == 429 and b"Try again later" in refused.content
    owner.user.refresh_from_db()
    assert owner.user.check_password(password)
    client.logout()
    response = client.post("/accounts/login/", {"username": "alice@acme.test",
                                                "password": password})
    assert response.status_code == 429


def test_failed_sign_ins_count_on_the_password_change_page(client, owner, password):
    client.force_login(owner.user)  # signed in, while someone else guesses elsewhere
    guesser = Client()
    for _ in range(10):
        guesser.post("/accounts/login/", {"username": "Alice@acme.teſt", "password": "nope"},
                     REMOTE_ADDR="198.51.100.4")
    assert change_password(client, password).status_code == 429


def test_wrong_old_passwords_count_for_the_address_too(client, owner, member, password, settings):
    settings.SIGN_IN_ADDRESS_LIMIT = 5
    client.force_login(owner.user)
    for _ in range(5):
        change_password(client, "not-my-password", REMOTE_ADDR="203.0.113.9")
    client.force_login(member.user)
    assert change_password(client, password, REMOTE_ADDR="203.0.113.9").status_code == 429
    assert change_password(client, password, REMOTE_ADDR="203.0.113.10").status_code == 302


def test_a_mistyped_new_password_is_not_a_failed_sign_in(client, owner, password):
    client.force_login(owner.user)
    for _ in range(12):
        response = client.post(CHANGE, {"old_password": password, "new_password1": "one-thing-1",
                                        "new_password2": "another-thing-2"})
        assert response.status_code == 200
    assert change_password(client, password).status_code == 302
