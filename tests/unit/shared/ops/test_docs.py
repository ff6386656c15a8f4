from shared.ops.docs import README, render


def test_readme_lists_every_setting_as_the_code_defines_it() -> None:
    text = README.read_text()
    assert render(text) == text, "README settings table is stale: run `make docs`"
