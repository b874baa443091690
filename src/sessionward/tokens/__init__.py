"""Token formats: access tokens (JWS), refresh tokens (AES-SIV), keys and encodings."""
