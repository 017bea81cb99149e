"""HTTP ingestion: client applications request, follow and cancel deliveries over HTTP.

`api` is the FastAPI app (no I/O of its own), `gateway` the one MQTT connection of a process,
`statuses` the in-memory status board it feeds, `server` runs them under uvicorn.
"""
