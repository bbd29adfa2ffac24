from pathlib import Path

from fupin.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_setting_and_both_commands():
    for name in Settings.model_fields:
        assert f"FUPIN_{name.upper()}" in README, f"README lacks FUPIN_{name.upper()}"
    assert "make run" in README
    assert "make test" in README
