from sessionward import SessionWard


def test_create_verify_refresh_round_trip(engine: SessionWard) -> None:
    tokens = engine.create_new_session("alice", {"role": "x"}, {"secret": 1})
    verified = engine.get_session(tokens.access_token.value)
    assert verified.user_id == "alice"
    assert verified.handle == tokens.handle
    assert verified.jwt_payload == {"role": "x"}
    refreshed = engine.refresh_session(tokens.refresh_token.value)
    promoted = engine.get_session(refreshed.access_token.value)
    assert promoted.new_access_token is not None
    assert engine.get_session_data(tokens.handle) == {"secret": 1}
