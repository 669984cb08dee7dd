def test_me_shows_the_callers_own_account_only(client, alice, bob):
    client.force_login(alice)
    body = client.get("/api/v1/me/").json()
    assert body == {
        "id": str(alice.id),
        "email": "alice@example.com",
        "is_staff": False,
        "created_at": body["created_at"],
    }
    assert str(bob.id) not in str(body)
