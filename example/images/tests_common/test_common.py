"""Tests every image of the stack must pass."""


def test_shell_works(container):
    assert container.run_and_check("echo hello").strip() == "hello"


def test_stack_version_is_recorded(container):
    assert container.run_and_check("cat /opt/stack/VERSION").strip() == "2024.1"
