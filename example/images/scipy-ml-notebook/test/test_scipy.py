def test_inherits_the_datascience_tools(container):
    tools = container.run_and_check("cat /opt/stack/tools.txt")
    assert "datascience" in tools and "scipy-ml" in tools
