"""The FastAPI application."""

from fastapi import FastAPI

app = FastAPI(title="Notes API", openapi_url="/api/v1/openapi.json")


@app.get("/api/v1/health")
def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}
