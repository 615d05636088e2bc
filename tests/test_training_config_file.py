"""`python -m training KIND --config FILE` with a config file it cannot use: one line naming the file (or the
setting) and the form, rc 2, before any model is loaded. Before, malformed JSON was named only by its position
("Expecting property name ...: line 1 column 20") and `"settings": "fast"` by Python's "dictionary update sequence
element #0 has length 1; 2 is required"."""

import pytest

from training.__main__ import main


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"base_model": "m",', "t.json: not valid JSON at line 1, column 20 (Expecting property name"),
        (
            '{"base_model": "m", "dataset": "rows.jsonl", "out_dir": "o", "settings": "fast"}',
            "sft settings must be a JSON object, got str 'fast'",
        ),
    ],
    ids=["malformed", "settings-not-an-object"],
)
def test_a_config_it_cannot_use_is_one_line_naming_it(tmp_path, capsys, text, reason):
    config = tmp_path / "t.json"
    config.write_text(text)
    (tmp_path / "rows.jsonl").write_text('{"prompt": [{"role": "user", "content": "q"}], "completion": "a"}\n')
    assert main(["sft", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and reason in err, err
