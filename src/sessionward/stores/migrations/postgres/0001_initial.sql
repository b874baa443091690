CREATE TABLE session_info (
    session_handle TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    refresh_token_hash_2 TEXT NOT NULL,
    prev_refresh_token_hash_2 TEXT,
    rotated_at BIGINT,
    session_data JSON NOT NULL,
    jwt_user_payload JSON NOT NULL,
    created_at_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX session_info_user_id ON session_info (user_id);
CREATE INDEX session_info_expires_at ON session_info (expires_at);
CREATE TABLE key_value (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    created_at_time BIGINT NOT NULL
);
