"""Fixtures shared by every image's tests: a running container of the image
under test (TEST_IMAGE), removed when the test ends."""
import os

import docker
import pytest


class TrackedContainer:
    """Runs commands in a container of the image under test."""

    def __init__(self, client, image):
        self.client = client
        self.image = image

    def run(self, command):
        """Runs `command` with sh in a fresh container; returns (exit code, output)."""
        container = self.client.containers.run(
            self.image, ["sh", "-c", command], detach=True, labels={"io.strata.test": "1"}
        )
        try:
            result = container.wait(timeout=60)
            output = container.logs().decode("utf-8", "replace")
            return result["StatusCode"], output
        finally:
            container.remove(force=True)

    def run_and_check(self, command):
        """Runs `command` and fails the test unless it exits 0; returns its output."""
        code, output = self.run(command)
        assert code == 0, f"{command!r} exited {code}:\n{output}"
        return output


@pytest.fixture(scope="session")
def docker_client():
    return docker.from_env()


@pytest.fixture
def container(docker_client):
    image = os.environ.get("TEST_IMAGE")
    if not image:
        pytest.fail("TEST_IMAGE is not set: run these tests through strata, or set it to an image ref")
    return TrackedContainer(docker_client, image)
