"""Who is calling: JWT, Envoy's jwt_authn metadata, mTLS/SPIFFE and API keys, fused into one
`identity` for policies that should not care how the caller proved it."""
