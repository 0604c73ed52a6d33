def test_image_answers_after_push(container):
    assert container.run_and_check("uname -s").strip() == "Linux"
