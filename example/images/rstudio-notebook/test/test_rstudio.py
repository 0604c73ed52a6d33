def test_rstudio_layer(container):
    assert "rstudio: r" in container.run_and_check("cat /opt/stack/tools.txt")
