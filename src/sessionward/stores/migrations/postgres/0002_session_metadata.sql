ALTER TABLE session_info
    ADD COLUMN last_active_at BIGINT,
    ADD COLUMN auth_time BIGINT,
    ADD COLUMN persistent BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN refresh_validity BIGINT,
    ADD COLUMN created_ip TEXT,
    ADD COLUMN created_user_agent TEXT,
    ADD COLUMN last_ip TEXT,
    ADD COLUMN last_user_agent TEXT;
