"""The Docker Compose adapter: the `docker compose` CLI and the Docker API for containers."""
