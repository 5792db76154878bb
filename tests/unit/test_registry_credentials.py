"""Registry credentials are found where `docker push` finds them, and never shown."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from devloop.build import credentials as creds


def write_config(tmp_path: Path, config: dict[str, object]) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": os.environ.get("PATH", "")}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def helper(tmp_path: Path, name: str, script: str) -> str:
    """A real credential helper program `docker-credential-<name>` in tmp_path/bin."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    path = bindir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(bindir)


def test_auths_entry_is_decoded_from_base64_user_password(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"registry.example.com": {
        "auth": b64("alice:s3cret:with-colon")}}})
    found = creds.find_credentials("registry.example.com", env)
    assert found is not None
    assert (found.username, found.password) == ("alice", "s3cret:with-colon")
    assert "s3cret" not in repr(found)
    assert "registry.example.com" in found.source


def test_auths_key_with_scheme_and_path_matches_the_host(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"https://registry.example.com:5000/v1/": {
        "username": "bob", "password": "pw"}}})
    found = creds.find_credentials("registry.example.com:5000", env)
    assert found is not None and found.username == "bob"
    assert creds.find_credentials("registry.example.com", env) is None


def test_an_image_name_is_looked_up_by_its_registry_host(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {
        "auth": b64("hub:pw")}}})
    found = creds.find_credentials("busybox", env)
    assert found is not None and found.username == "hub"
    assert creds.registry_host("registry.devloop.test/team/app") == "registry.devloop.test"
    assert creds.registry_host("localhost:5000/app") == "localhost:5000"
    assert creds.registry_host("library/busybox") == "docker.io"


def test_no_config_file_means_no_credentials(tmp_path: Path) -> None:
    assert creds.find_credentials("registry.example.com",
                                  {"DOCKER_CONFIG": str(tmp_path / "none")}) is None


def test_a_broken_auth_entry_says_to_log_in_again(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"r.example.com": {"auth": b64("no-colon")}}})
    with pytest.raises(creds.CredentialsError, match="docker login"):
        creds.find_credentials("r.example.com", env)


def test_cred_helper_for_the_host_is_asked_with_the_host_on_stdin(tmp_path: Path) -> None:
    bindir = helper(tmp_path, "team", 'read host\n'
                    'printf \'{"ServerURL":"%s","Username":"u-%s","Secret":"tok"}\' '
                    '"$host" "$host"\n')
    env = write_config(tmp_path, {"credHelpers": {"registry.example.com": "team"},
                                  "auths": {"registry.example.com": {"auth": b64("file:pw")}}})
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    found = creds.find_credentials("registry.example.com", env)
    assert found is not None
    assert (found.username, found.password) == ("u-registry.example.com", "tok")
    assert found.source == "credential helper docker-credential-team"


def test_creds_store_that_does_not_know_the_host_falls_back_to_auths(tmp_path: Path) -> None:
    bindir = helper(tmp_path, "desktop",
                    'echo "credentials not found in native keychain"; exit 1\n')
    env = write_config(tmp_path, {"credsStore": "desktop",
                                  "auths": {"r.example.com": {"auth": b64("file:pw")}}})
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    found = creds.find_credentials("r.example.com", env)
    assert found is not None and found.username == "file"
    assert creds.find_credentials("other.example.com", env) is None


def test_helper_identity_token_is_not_usable_by_the_cluster(tmp_path: Path) -> None:
    bindir = helper(tmp_path, "gcloud",
                    'echo \'{"ServerURL":"x","Username":"<token>","Secret":"refresh"}\'\n')
    env = write_config(tmp_path, {"credHelpers": {"gcr.io": "gcloud"}})
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    found = creds.find_credentials("gcr.io", env)
    assert found is not None and found.identity_token == "refresh"
    assert found.auth_config() == {"identitytoken": "refresh", "serveraddress": "gcr.io"}
    assert not found.usable_by_cluster
    with pytest.raises(creds.CredentialsError, match="identity token"):
        creds.dockerconfigjson(found)


def test_missing_helper_program_is_named(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"credHelpers": {"r.example.com": "absent-helper"}})
    with pytest.raises(creds.CredentialsError, match="docker-credential-absent-helper"):
        creds.find_credentials("r.example.com", env)


def test_failing_helper_error_does_not_echo_its_output_as_a_secret(tmp_path: Path) -> None:
    bindir = helper(tmp_path, "broken", 'echo "keychain locked" >&2; exit 3\n')
    env = write_config(tmp_path, {"credHelpers": {"r.example.com": "broken"}})
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    with pytest.raises(creds.CredentialsError, match="keychain locked"):
        creds.find_credentials("r.example.com", env)


def test_dockerconfigjson_for_a_pull_secret_lists_every_pull_host() -> None:
    found = creds.Credentials(host="registry.example.com", username="u", password="p",
                              source="test")
    data = json.loads(creds.dockerconfigjson(
        found, hosts=("registry.internal:5000", "registry.example.com")))
    assert set(data["auths"]) == {"registry.internal:5000", "registry.example.com"}
    entry = data["auths"]["registry.example.com"]
    assert entry == {"username": "u", "password": "p", "auth": b64("u:p")}
