"""Full-width punctuation where YAML syntax belongs is found and named; full-width
characters inside values are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.errors import ConfigError as CentralConfigError
from central.institution import load_institution
from edge.config import load_edge_config
from edge.errors import ConfigError as EdgeConfigError
from protocols.fullwidth import structural_fullwidth


@pytest.mark.parametrize(("text", "expected"), [
    ("floor_area_m2：8000\n", [(1, 14, "：", ":")]),
    ("a: 1\n  port：1883\n", [(2, 7, "：", ":")]),
    ("points: [a，b，c]\n", [(1, 11, "，", ","), (1, 13, "，", ",")]),
    ("points: ［a, b］\n", [(1, 9, "［", "["), (1, 14, "］", "]")]),
    ("－ id: a\n", [(1, 1, "－", "-")]),
    ("　name: a\n", [(1, 1, "　", " ")]),
    ("name: “示范中学”\n", [(1, 7, "“", '"')]),
    # Inside values full-width punctuation is just text.
    ("name: 示范中学（东校区）\n", []),
    ("name: 教学楼，一层\n", []),
    ("note: 注意：周末关闭\n", []),
    ("name: '教学楼：一层'\n", []),
    ("# 注释：说明\n", []),
    ("id: a  # 说明：x\n", []),
])
def test_structural_positions(text: str, expected: list[tuple[int, int, str, str]]) -> None:
    assert [(f.line, f.column, f.char, f.ascii) for f in structural_fullwidth(text)] == expected


def test_the_message_names_place_character_and_ascii() -> None:
    (found,) = structural_fullwidth("x: 1\ninterval_s：900\n")
    assert str(found) == ("line 2, column 11: full-width '：' (U+FF1A FULLWIDTH COLON) where "
                          "YAML needs the ASCII ':'")


def test_institution_yaml_error_names_the_full_width_colon(tmp_path: Path) -> None:
    path = tmp_path / "institution.yaml"
    path.write_text("institution:\n  id: demo\n  name：示范中学\n  type: school\n",
                    encoding="utf-8")
    with pytest.raises(CentralConfigError) as err:
        load_institution(path)
    assert "line 3, column 7: full-width '：' (U+FF1A FULLWIDTH COLON) where YAML needs the " \
           "ASCII ':'" in str(err.value)


def test_institution_validation_error_names_a_full_width_comma(tmp_path: Path) -> None:
    # Valid YAML, wrong structure: a flow list of one string instead of two ids.
    path = tmp_path / "institution.yaml"
    path.write_text("institution: {id: demo， name: 示范中学, type: school}\n", encoding="utf-8")
    with pytest.raises(CentralConfigError) as err:
        load_institution(path)
    assert "line 1, column 23: full-width '，'" in str(err.value)
    assert "ASCII ','" in str(err.value)


def test_edge_yaml_error_names_the_full_width_colon(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("edge_id: e1\nsite: s1\ninterval_s：900\n", encoding="utf-8")
    with pytest.raises(EdgeConfigError) as err:
        load_edge_config(path)
    assert "line 3, column 11: full-width '：' (U+FF1A FULLWIDTH COLON) where YAML needs " \
           "the ASCII ':'" in str(err.value)
