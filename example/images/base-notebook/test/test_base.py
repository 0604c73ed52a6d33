def test_busybox_applets_are_installed(container):
    assert "/bin/sh" in container.run_and_check("which sh")
