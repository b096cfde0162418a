"""The operator protocol: generated messages and stubs, and the constants both sides share."""

# What `Healthy` answers once the model is loaded; anything else means "not serving".
HEALTHY = "healthy"
