"""identity: users, credentials, e-mail OTP codes, refresh tokens and the keys that sign access tokens."""
