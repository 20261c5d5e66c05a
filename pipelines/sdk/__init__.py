"""For those who extend citypipe: the connector conformance kit (`citypipe.sdk.conformance`)
and the scaffold of a new connector package (`citypipe new-connector`)."""
