ALTER TABLE session_info ADD COLUMN last_active_at INTEGER;
ALTER TABLE session_info ADD COLUMN auth_time INTEGER;
ALTER TABLE session_info ADD COLUMN persistent INTEGER NOT NULL DEFAULT 1;
ALTER TABLE session_info ADD COLUMN refresh_validity INTEGER;
ALTER TABLE session_info ADD COLUMN created_ip TEXT;
ALTER TABLE session_info ADD COLUMN created_user_agent TEXT;
ALTER TABLE session_info ADD COLUMN last_ip TEXT;
ALTER TABLE session_info ADD COLUMN last_user_agent TEXT;
