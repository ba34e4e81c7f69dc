import pytest

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
