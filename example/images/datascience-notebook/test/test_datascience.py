def test_toolset_is_recorded(container):
    assert "datascience: datascience" in container.run_and_check("cat /opt/stack/tools.txt")
