"""Camunda Forms: what a deployment refuses (and where it says the problem is), and what a
submitted form must satisfy on the server, as form-js checks it in the browser."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.forms import (
    SCHEMA_PATH,
    FormDefinitionError,
    FormValidationError,
    parse_form,
    submission_schema,
    validate_submission,
)

FORMS = Path(__file__).resolve().parents[2] / "forms"
REVIEW_FILE = FORMS / "department_review.form"
INTAKE_FILE = FORMS / "application_intake.form"


def review_form():
    return parse_form(REVIEW_FILE.read_bytes(), REVIEW_FILE.name)


def intake_form():
    return parse_form(INTAKE_FILE.read_bytes(), INTAKE_FILE.name)


def form_json(*components, **top) -> dict:
    doc = {"components": list(components), "type": "default", "id": "test_form",
           "executionPlatform": "Camunda Platform", "executionPlatformVersion": "7.22.0", "schemaVersion": 16}
    doc.update(top)
    return doc


def make_form(*components, **top):
    return parse_form(json.dumps(form_json(*components, **top), ensure_ascii=False), "test.form")


def refused(doc_or_text) -> FormDefinitionError:
    text = doc_or_text if isinstance(doc_or_text, (str, bytes)) else json.dumps(doc_or_text, ensure_ascii=False)
    with pytest.raises(FormDefinitionError) as caught:
        parse_form(text, "broken.form")
    return caught.value


def errors_of(form, values, context=None) -> dict:
    with pytest.raises(FormValidationError) as caught:
        validate_submission(form, values, context)
    return caught.value.errors


def textfield(key, **extra):
    return {"label": key, "type": "textfield", "id": f"Field_{key.replace('.', '_')}", "key": key, **extra}


VALID_REVIEW = {"decision": "approve", "opinion": "材料齐全，同意", "fee": 1200.5, "siteInspectionDone": True}


# --- the example forms -----------------------------------------------------------------------

def test_both_example_forms_parse_with_their_input_fields():
    review, intake = review_form(), intake_form()
    assert review.id == "department_review" and intake.id == "application_intake"
    assert [f.key for f in review.fields] == ["applicantName", "decision", "opinion", "fee", "siteInspectionDone"]
    assert [f.key for f in intake.fields] == ["applicantName", "creditCode", "projectClass", "area", "appliedOn",
                                              "items"]
    decision = next(f for f in review.fields if f.key == "decision")
    assert decision.required and decision.options == ("approve", "reject", "correction") and decision.label == "审查结论"
    applicant = next(f for f in review.fields if f.key == "applicantName")
    assert applicant.readonly and not applicant.required


def test_example_forms_look_as_camunda_modeler_5_saves_them_for_camunda_7():
    for path in (REVIEW_FILE, INTAKE_FILE):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["type"] == "default" and doc["schemaVersion"] >= 16
        assert doc["executionPlatform"] == "Camunda Platform" and doc["executionPlatformVersion"] == "7.22.0"
        assert doc["exporter"]["name"] == "Camunda Modeler" and doc["exporter"]["version"].startswith("5.")
        for component in doc["components"]:
            assert component["id"].startswith("Field_") and "row" in component["layout"]


def test_the_structure_schema_is_itself_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_a_file_that_passed_skips_the_structure_check_and_any_changed_byte_is_checked_again(monkeypatch):
    from engine import forms
    checked = []
    real = forms._schema_problems
    monkeypatch.setattr(forms, "_CONFORMING", forms._Checksums())
    monkeypatch.setattr(forms, "_schema_problems", lambda doc: checked.append(doc["id"]) or real(doc))
    source = REVIEW_FILE.read_bytes()
    first, again = parse_form(source, REVIEW_FILE.name), parse_form(source, REVIEW_FILE.name)
    assert checked == [first.id] and again.fields == first.fields and again.checksum == first.checksum
    broken = json.loads(source)
    broken["components"][0]["type"] = "slider"       # same id, one component of an unknown type
    with pytest.raises(FormDefinitionError, match=r"components\[0\]\.type: unknown component type 'slider'"):
        parse_form(json.dumps(broken), REVIEW_FILE.name)
    assert checked == [first.id, first.id]


# --- forms a deployment refuses ----------------------------------------------------------------

def test_form_that_is_not_valid_json_is_refused_with_line_and_column():
    err = refused('{\n  "type": "default",\n  "components": [,]\n}')
    assert err.location == "line 3, column 18"
    assert str(err).startswith("broken.form: line 3, column 18: not valid JSON")


def test_nan_in_a_form_is_refused_as_not_json():
    err = refused('{"type": "default", "id": "f", "schemaVersion": 16, "components": [{"type": "number", '
                  '"key": "n", "validate": {"min": NaN}}]}')
    assert err.location.startswith("line 1, column ") and "NaN" in err.message


def test_unknown_component_type_is_refused_at_its_type_and_lists_the_known_ones():
    err = refused(form_json(textfield("a"), {"type": "slider", "id": "Field_s", "key": "level"}))
    assert err.location == "components[1].type"
    assert "unknown component type 'slider'" in err.message and "textfield" in err.message
    assert len(err.problems) == 1          # no follow-on complaints about the slider's other properties


def test_duplicate_key_is_refused_naming_both_fields():
    err = refused(form_json(textfield("opinion", id="Field_a"),
                            {"type": "textarea", "id": "Field_b", "key": "opinion"}))
    assert err.location == "components[1].key"
    assert "'opinion'" in err.message and "Field_a" in err.message and "components[0]" in err.message


def test_dotted_key_under_a_plain_key_is_a_collision():
    err = refused(form_json(textfield("applicant"), textfield("applicant.name")))
    assert err.location == "components[1].key" and "data path 'applicant'" in err.message


def test_same_key_inside_a_group_path_is_no_collision():
    form = make_form(textfield("name"),
                     {"type": "group", "id": "Group_1", "label": "法人", "path": "legalPerson",
                      "components": [textfield("name", id="Field_inner")]})
    assert [f.key for f in form.fields] == ["name", "legalPerson.name"]


def test_group_path_that_is_also_a_fields_key_is_refused():
    err = refused(form_json(textfield("fee"),
                            {"type": "group", "id": "Group_1", "path": "fee", "components": [textfield("x")]}))
    assert err.location == "components[1].path" and "already used by textfield 'fee'" in err.message


def test_duplicate_component_id_is_refused():
    err = refused(form_json(textfield("a", id="Field_same"), textfield("b", id="Field_same")))
    assert err.location == "components[1].id" and "also used at components[0]" in err.message


def test_pattern_that_does_not_compile_is_refused_with_advice_on_javascript_syntax():
    err = refused(form_json(textfield("code", validate={"pattern": "[^]+"})))
    assert err.location == "components[0].validate.pattern"
    assert "does not compile" in err.message and "JavaScript" in err.message and "[\\s\\S]" in err.message


def test_python_only_regex_syntax_is_refused_because_the_browser_would_reject_it():
    err = refused(form_json(textfield("code", validate={"pattern": "(?i)abc"})))
    assert err.location == "components[0].validate.pattern"


def test_javascript_named_groups_in_a_pattern_are_accepted():
    form = make_form(textfield("code", validate={"pattern": "^(?<year>\\d{4})-\\k<year>$"}))
    assert validate_submission(form, {"code": "2024-2024"}) == {"code": "2024-2024"}
    assert errors_of(form, {"code": "2024-2025"})["code"]


def test_min_greater_than_max_is_refused():
    err = refused(form_json({"type": "number", "id": "Field_fee", "key": "fee", "validate": {"min": 10, "max": 5}}))
    assert err.location == "components[0].validate.min"
    assert "min 10 is greater than max 5" in err.message and "make min at most max" in err.message


def test_min_length_greater_than_max_length_is_refused_even_when_written_as_text():
    err = refused(form_json(textfield("a", validate={"minLength": 10, "maxLength": "5"})))
    assert err.location == "components[0].validate.minLength"


def test_min_that_is_neither_number_nor_feel_is_refused():
    err = refused(form_json({"type": "number", "id": "Field_n", "key": "n", "validate": {"min": "ten"}}))
    assert err.location == "components[0].validate.min" and "FEEL" in err.message


def test_schema_version_older_than_16_asks_to_resave_in_a_current_modeler():
    err = refused(form_json(textfield("a"), schemaVersion=8))
    assert err.location == "schemaVersion"
    assert "older than 16" in err.message and "Camunda Modeler" in err.message and "save it again" in err.message


def test_select_without_values_is_refused():
    err = refused(form_json({"label": "类别", "type": "select", "id": "Field_c", "key": "projectClass"}))
    assert err.location == "components[0].values" and "has no options" in err.message


def test_select_with_values_from_a_variable_is_accepted():
    form = make_form({"label": "类别", "type": "select", "id": "Field_c", "key": "projectClass", "valuesKey": "classes"})
    assert form.fields[0].values_key == "classes" and form.fields[0].options is None
    assert form.variable_names == ("projectClass", "classes")


def test_rule_on_the_wrong_component_type_is_refused():
    err = refused(form_json({"type": "textarea", "id": "Field_t", "key": "t", "validate": {"min": 3}}))
    assert err.location == "components[0].validate.min" and "not allowed on a textarea" in err.message


def test_input_field_without_key_is_refused():
    err = refused(form_json({"label": "意见", "type": "textarea", "id": "Field_t"}))
    assert err.location == "components[0].key" and "Key" in err.message


def test_chinese_key_is_refused_because_form_js_keys_are_ascii_words():
    err = refused(form_json(textfield("费用")))
    assert err.location == "components[0].key" and "letters, digits and underscores" in err.message


def test_form_without_id_is_refused():
    doc = form_json(textfield("a"))
    del doc["id"]
    assert refused(doc).location == "id"


def test_dynamic_list_without_path_is_refused():
    err = refused(form_json({"type": "dynamiclist", "id": "List_1", "components": [textfield("name")]}))
    assert err.location == "components[0].path"


def test_every_problem_of_a_broken_form_is_listed_on_the_error():
    err = refused(form_json(textfield("a", id="X"), textfield("a", id="X"), schemaVersion=12))
    assert [location for location, _ in err.problems] == ["schemaVersion", "components[1].id", "components[1].key"]
    assert "and 2 more problems" in str(err)


def test_a_schema_error_does_not_hide_the_other_problems_of_the_form():
    err = refused(form_json(textfield("a", id="X", validate={"minLength": -1}), textfield("a", id="X"),
                            schemaVersion=12))
    assert [location for location, _ in err.problems] == [
        "components[0].validate.minLength", "schemaVersion", "components[1].id", "components[1].key"]
    assert "and 3 more problems" in str(err)


@pytest.mark.parametrize("component, location, says", [
    (textfield("a", validate={"minLength": -1}), "components[0].validate.minLength",
     "textfield 'a' (Field_a): validate.minLength must be at least 0, not -1: a length cannot be negative"),
    ({"type": "number", "key": "n", "id": "N", "decimalDigits": -1}, "components[0].decimalDigits",
     "number 'n' (N): decimalDigits must be at least 0, not -1: enter 0 (whole numbers only) or more"),
    (textfield("a", id=""), "components[0].id",
     "textfield 'a': id is empty: give the component an id"),
    ({"type": "datetime", "key": "d", "id": "D", "subtype": "month"}, "components[0].subtype",
     "datetime 'd' (D): subtype 'month' is not one form-js knows: use one of 'date', 'time', 'datetime'"),
    (textfield("a", validate={"validationType": "url"}), "components[0].validate.validationType",
     "use one of 'email', 'phone', 'custom' (or leave it empty)"),
])
def test_schema_errors_name_the_component_and_the_fix(component, location, says):
    err = refused(form_json(component))
    assert err.location == location and says in err.message
    assert "is less than the minimum" not in err.message and "should be non-empty" not in err.message


def test_an_empty_form_id_asks_for_the_id_camunda_modeler_sets():
    err = refused(form_json(textfield("a"), id=""))
    assert err.location == "id" and "the form's id is empty: set the form's ID in Camunda Modeler" in err.message


def test_two_options_with_one_value_are_refused():
    err = refused(form_json({"type": "select", "key": "s", "id": "S", "values": [
        {"label": "甲", "value": "a"}, {"label": "乙", "value": "b"}, {"label": "丙", "value": "a"}]}))
    assert err.location == "components[0].values[2].value"
    assert "option value 'a' is also the value of values[0]" in err.message


@pytest.mark.parametrize("hide, problem", [
    ("=a ==== (", "a '(' that is never closed"),
    ("=(a = 1))", "a ')' that closes nothing"),
    ("=(a = 1]", "a '(' closed by ']'"),
    ('=a = "open', "a string that never ends"),
])
def test_a_hide_condition_that_is_surely_no_feel_is_refused_at_deployment(hide, problem):
    err = refused(form_json(textfield("a", conditional={"hide": hide}, validate={"required": True})))
    assert err.location == "components[0].conditional.hide"
    assert problem in err.message and "is not a FEEL expression" in err.message


@pytest.mark.parametrize("hide", [
    "=x in (1..10]", "=x in ]1..10[", '=a = ")"', "=count(items) > 2", "=a == b", "=x // a comment (",
    "=`odd (name` = 1", "={a: [1, 2]}.a[1] = 2",
])
def test_feel_the_server_does_not_read_still_deploys(hide):
    assert make_form(textfield("a", conditional={"hide": hide})).fields[0].hidden_when == (hide,)


# --- submissions -------------------------------------------------------------------------------

def test_valid_review_passes_unchanged():
    assert validate_submission(review_form(), VALID_REVIEW) == VALID_REVIEW


def test_missing_required_opinion_is_reported_with_other_errors():
    errors = errors_of(review_form(), {"decision": "maybe", "fee": -1, "siteInspectionDone": "yes"})
    assert set(errors) == {"decision", "opinion", "fee", "siteInspectionDone"}
    assert errors["opinion"] == ["Field is required."]
    assert "approve, reject, correction" in errors["decision"][0]
    assert errors["fee"] == ["Field must have minimum value of 0."]
    assert errors["siteInspectionDone"] == ["Must be true or false."]


def test_empty_text_and_null_count_as_missing_for_required_fields():
    errors = errors_of(review_form(), {"decision": None, "opinion": ""})
    assert errors == {"decision": ["Field is required."], "opinion": ["Field is required."]}


def test_opinion_of_2001_characters_is_too_long_and_2000_chinese_characters_fit():
    form = review_form()
    assert validate_submission(form, {**VALID_REVIEW, "opinion": "同" * 2000})
    errors = errors_of(form, {**VALID_REVIEW, "opinion": "同" * 2001})
    assert errors["opinion"] == ["Field must have maximum length of 2000 (it has 2001)."]


def test_lengths_count_like_javascript_trimmed_and_in_utf16_units():
    form = make_form(textfield("name", validate={"maxLength": 3}))
    assert validate_submission(form, {"name": "  abc  "})       # form-js trims before counting
    assert errors_of(form, {"name": "ab😀"})                     # an emoji is two UTF-16 units


def test_fee_above_ten_million_or_with_three_decimals_is_refused():
    form = review_form()
    assert errors_of(form, {**VALID_REVIEW, "fee": 10_000_000.01}) == {
        "fee": ["Field must have maximum value of 10000000."]}
    assert errors_of(form, {**VALID_REVIEW, "fee": 1.234}) == {
        "fee": ["Value is expected to have at most 2 decimal digits."]}
    assert validate_submission(form, {**VALID_REVIEW, "fee": 10_000_000})["fee"] == 10_000_000


def test_a_boolean_or_text_is_not_a_number():
    form = review_form()
    assert errors_of(form, {**VALID_REVIEW, "fee": True}) == {"fee": ["Must be a number."]}
    assert errors_of(form, {**VALID_REVIEW, "fee": "12"}) == {"fee": ["Must be a number."]}


def test_number_serialized_to_string_accepts_numeric_text():
    form = make_form({"type": "number", "id": "Field_n", "key": "amount", "serializeToString": True,
                      "decimalDigits": 0, "validate": {"max": 100}})
    assert validate_submission(form, {"amount": "42"}) == {"amount": "42"}
    assert errors_of(form, {"amount": "4.5"}) == {"amount": ["Value is expected to be an integer."]}
    assert errors_of(form, {"amount": "abc"}) == {"amount": ["Must be a number."]}


def test_number_increment_names_the_nearest_valid_values():
    form = make_form({"type": "number", "id": "Field_n", "key": "n", "increment": 5})
    assert errors_of(form, {"n": 12}) == {
        "n": ["Please select a valid value, the two nearest valid values are 10 and 15."]}


def test_text_submitted_as_a_number_is_refused():
    assert errors_of(review_form(), {**VALID_REVIEW, "opinion": 42}) == {"opinion": ["Must be text."]}


def test_readonly_applicant_name_is_dropped_from_the_cleaned_values():
    cleaned = validate_submission(review_form(), {**VALID_REVIEW, "applicantName": "改过的名字"})
    assert "applicantName" not in cleaned


def test_disabled_field_value_is_dropped_and_never_required():
    form = make_form(textfield("code", disabled=True, validate={"required": True}))
    assert validate_submission(form, {"code": "x"}) == {}
    assert validate_submission(form, {}) == {}


def test_keys_that_are_no_form_field_pass_through_as_process_variables():
    cleaned = validate_submission(review_form(), {**VALID_REVIEW, "caseNote": {"by": "fgw"}, "round": 2})
    assert cleaned["caseNote"] == {"by": "fgw"} and cleaned["round"] == 2


def test_credit_code_must_match_the_unified_social_credit_code_pattern():
    form = intake_form()
    assert validate_submission(form, {"applicantName": "苏州某某科技有限公司", "creditCode": "91320500MA1XXXXX0X"})
    errors = errors_of(form, {"applicantName": "苏州某某科技有限公司", "creditCode": "91320500MA1XXXXXOX"})
    assert errors == {"creditCode": ["Field must match pattern ^[0-9A-HJ-NPQRTUWXY]{2}\\d{6}[0-9A-HJ-NPQRTUWXY]{10}$."]}


def test_full_width_digits_do_not_pass_a_digit_pattern():
    form = make_form(textfield("code", validate={"pattern": "^\\d{6}$"}))
    assert errors_of(form, {"code": "３２０５００"})      # JavaScript's \d is ASCII only


def test_pattern_is_tested_anywhere_in_the_value_as_form_js_does():
    # form-js runs RegExp.test: an unanchored pattern matches part of the value
    form = make_form(textfield("code", validate={"pattern": "\\d{3}"}))
    assert validate_submission(form, {"code": "ab123cd"})
    assert errors_of(form, {"code": "ab12cd"})


def test_a_pattern_that_backtracks_is_cut_off_with_a_message_for_the_designer():
    # (a+)+$ on 28 a's and a "!" took Python's re 36 s, holding every other request meanwhile
    for pattern, value in (("(a+)+$", "a" * 2000 + "!"), ("^(a|a)*$", "a" * 40 + "!")):
        form = make_form(textfield("code", validate={"pattern": pattern}))
        assert validate_submission(form, {"code": "aaaa"})
        [problem] = errors_of(form, {"code": value})["code"]
        assert f"could not be checked against pattern {pattern}" in problem and "simplify" in problem


def test_custom_pattern_error_message_is_used():
    form = make_form(textfield("code", validate={"pattern": "^\\d+$", "patternErrorMessage": "只能填数字"}))
    assert errors_of(form, {"code": "abc"}) == {"code": ["只能填数字"]}


def test_only_the_intake_applicant_name_is_required():
    assert errors_of(intake_form(), {"creditCode": "91320500MA1XXXXX0X"}) == {"applicantName": ["Field is required."]}


def test_applicant_name_over_100_characters_is_refused():
    errors = errors_of(intake_form(), {"applicantName": "某" * 101})
    assert errors == {"applicantName": ["Field must have maximum length of 100 (it has 101)."]}


def test_select_and_checklist_accept_only_their_options():
    form = intake_form()
    values = {"applicantName": "某公司", "projectClass": "airport", "items": ["applicationLetter", "photo", "video"]}
    errors = errors_of(form, values)
    assert set(errors) == {"projectClass", "items"}
    assert "'airport' is not among the options" in errors["projectClass"][0]
    assert "'photo', 'video' are not among the options" in errors["items"][0]
    assert errors_of(form, {"applicantName": "某公司", "items": "applicationLetter"}) == {
        "items": ["Must be a list of option values."]}
    good = {"applicantName": "某公司", "projectClass": "water", "items": ["applicationLetter", "landUsePermit"]}
    assert validate_submission(form, good) == good


def test_area_may_not_be_negative():
    assert errors_of(intake_form(), {"applicantName": "某公司", "area": -0.5}) == {
        "area": ["Field must have minimum value of 0."]}


@pytest.mark.parametrize("value", ["2024-05-01"])
def test_applied_on_accepts_an_iso_date(value):
    assert validate_submission(intake_form(), {"applicantName": "某公司", "appliedOn": value})["appliedOn"] == value


@pytest.mark.parametrize("value", ["2024-02-30", "2024/05/01", "2024-05-01T10:00:00+08:00", "20240501", 20240501])
def test_applied_on_refuses_anything_but_an_iso_date(value):
    errors = errors_of(intake_form(), {"applicantName": "某公司", "appliedOn": value})
    assert list(errors) == ["appliedOn"]


@pytest.mark.parametrize("subtype,good,bad", [
    ("time", ["14:30", "14:30+08:00", "06:30Z"], ["25:00", "2:30 PM"]),
    ("datetime", ["2024-05-01T14:30", "2024-05-01T14:30+08:00", "2024-05-01T06:30:00.000Z"],
     ["2024-05-01", "2024-05-01 14:30"]),
])
def test_time_and_datetime_fields_take_iso_text_of_their_subtype(subtype, good, bad):
    form = make_form({"type": "datetime", "subtype": subtype, "dateLabel": "时间", "id": "Field_t", "key": "at"})
    for value in good:
        assert validate_submission(form, {"at": value}) == {"at": value}
    for value in bad:
        assert list(errors_of(form, {"at": value})) == ["at"], value


def test_email_and_phone_validation_types():
    form = make_form(textfield("email", validate={"validationType": "email"}),
                     textfield("phone", validate={"validationType": "phone"}))
    assert validate_submission(form, {"email": "li.lei@example.gov.cn", "phone": "+8613800138000"})
    errors = errors_of(form, {"email": "li.lei@", "phone": "138 0013 8000"})
    assert errors == {"email": ["Field must be a valid email."],
                      "phone": ["Field must be a valid international phone number (e.g. +8613800138000)."]}


@pytest.mark.parametrize("phone, passes", [
    ("+8613800138000", True), ("008613800138000", True), ("+4930664040900", True),
    ("Tel +8613800138000", True),        # RegExp.test finds the number anywhere before the end
    ("+9991234567", False),              # 999 is no calling code form-js knows
    ("+860138000000", False),            # after the calling code a 0: form-js refuses it
    ("+86138", False), ("+8613800138000 ", False), ("+8613800138000\n", False), ("+86 138 0013 8000", False),
])
def test_phone_numbers_pass_as_form_js_passes_them(phone, passes):
    form = make_form(textfield("phone", validate={"validationType": "phone"}))
    if passes:
        assert validate_submission(form, {"phone": phone}) == {"phone": phone}
    else:
        assert "phone" in errors_of(form, {"phone": phone})


def test_required_checkbox_must_be_ticked():
    form = make_form({"label": "我已阅读须知", "type": "checkbox", "id": "Field_ok", "key": "agreed",
                      "validate": {"required": True}})
    assert errors_of(form, {"agreed": False}) == {"agreed": ["Field is required."]}
    assert validate_submission(form, {"agreed": True}) == {"agreed": True}


def test_options_from_values_key_are_checked_against_the_process_variables():
    form = make_form({"label": "承办部门", "type": "select", "id": "Field_d", "key": "department",
                      "valuesKey": "departments"})
    context = {"departments": [{"label": "发改委", "value": "fgw"}, {"label": "住建局", "value": "zjj"}]}
    assert validate_submission(form, {"department": "fgw"}, context) == {"department": "fgw"}
    assert "choose from fgw, zjj" in errors_of(form, {"department": "xyz"}, context)["department"][0]
    assert validate_submission(form, {"department": "xyz"}, {"departments": ["a", "xyz"]})
    assert validate_submission(form, {"department": "xyz"}) == {"department": "xyz"}     # nothing to check against


def test_conditionally_hidden_field_is_required_only_where_the_form_shows_it_and_checked_when_sent():
    form = make_form({"type": "textarea", "id": "Field_r", "key": "reason",
                      "validate": {"required": True, "maxLength": 5},
                      "conditional": {"hide": "=decision = \"approve\""}})
    assert not form.fields[0].required and form.fields[0].hidden_when == ('=decision = "approve"',)
    assert validate_submission(form, {"decision": "approve"}) == {"decision": "approve"}
    assert errors_of(form, {"decision": "reject"}) == {
        "reason": ['Field is required: the form hides it only when decision = "approve".']}
    assert errors_of(form, {}) == {"reason": ['Field is required: the form hides it only when decision = "approve".']}
    assert errors_of(form, {"decision": "approve", "reason": "too long text"})


def test_a_special_step_is_required_when_the_reviewer_starts_one():
    """forms/review_opinion.form: the select appears, and is required, when decision = "special"."""
    form = parse_form((FORMS / "review_opinion.form").read_bytes(), "review_opinion.form")
    assert errors_of(form, {"decision": "special", "opinion": "提请专家评审"}) == {
        "specialStep": ['Field is required: the form hides it only when decision != "special".']}
    chosen = {"decision": "special", "opinion": "提请专家评审", "specialStep": "expert_review"}
    assert validate_submission(form, chosen) == chosen
    assert validate_submission(form, {"decision": "approve", "opinion": "同意"}) == {"decision": "approve",
                                                                                   "opinion": "同意"}


def test_the_hide_condition_reads_the_variables_the_form_was_opened_with_under_the_values_entered():
    form = make_form(textfield("permitNo", validate={"required": True},
                               conditional={"hide": "=not(review.decision = \"approve\")"}))
    approved = {"review": {"decision": "approve", "opinion": "同意"}}
    assert errors_of(form, {}, approved) == {
        "permitNo": ['Field is required: the form hides it only when not(review.decision = "approve").']}
    assert validate_submission(form, {}, {"review": {"decision": "reject"}}) == {}
    assert validate_submission(form, {"review": {"decision": "reject"}}, approved) == {"review": {"decision": "reject"}}


def test_a_hidden_group_hides_its_fields_too():
    form = make_form({"type": "group", "id": "Group_s", "label": "特殊环节", "path": "special",
                      "conditional": {"hide": "=decision != \"special\""},
                      "components": [textfield("step", validate={"required": True},
                                               conditional={"hide": "=skipStep = true"})]})
    assert validate_submission(form, {"decision": "approve"}) == {"decision": "approve"}
    assert validate_submission(form, {"decision": "special", "skipStep": True}) == {
        "decision": "special", "skipStep": True}
    assert set(errors_of(form, {"decision": "special"})) == {"special.step"}


@pytest.mark.parametrize("hide", ["=is defined(decision)", "=decision in [\"a\", \"b\"]", "=count(items) > 1",
                                  "decision = \"a\"", "=decision = "])
def test_a_hide_condition_the_server_cannot_evaluate_leaves_the_field_optional(hide):
    form = make_form(textfield("reason", validate={"required": True}, conditional={"hide": hide}))
    assert not form.fields[0].required_when_shown
    assert validate_submission(form, {"decision": "x"}) == {"decision": "x"}


def test_a_field_in_a_dynamic_list_under_a_hide_condition_stays_optional():
    form = make_form({"type": "dynamiclist", "id": "List_1", "label": "联系人", "path": "contacts", "isRepeating": True,
                      "components": [textfield("name", validate={"required": True},
                                               conditional={"hide": "=kind = \"none\""})]})
    assert validate_submission(form, {"contacts": [{}]}) == {"contacts": [{}]}


def test_readonly_given_as_feel_keeps_the_value_but_is_never_required():
    form = make_form(textfield("code", readonly="=locked", validate={"required": True}))
    assert validate_submission(form, {}) == {}
    assert validate_submission(form, {"code": "x"}) == {"code": "x"}


def test_fields_in_a_group_path_are_validated_as_a_nested_object():
    form = make_form({"type": "group", "id": "Group_1", "label": "法定代表人", "path": "legalPerson", "components": [
        textfield("name", validate={"required": True}),
        textfield("contact.phone", validate={"validationType": "phone"})]})
    assert [f.key for f in form.fields] == ["legalPerson.name", "legalPerson.contact.phone"]
    value = {"legalPerson": {"name": "李雷", "contact": {"phone": "+8613800138000"}, "title": "董事长"}}
    assert validate_submission(form, value) == value
    errors = errors_of(form, {"legalPerson": {"contact": {"phone": "12"}}})
    assert set(errors) == {"legalPerson.name", "legalPerson.contact.phone"}
    assert errors_of(form, {}) == {"legalPerson.name": ["Field is required."]}
    assert errors_of(form, {"legalPerson": "李雷"}) == {
        "legalPerson": ["Must be an object holding the fields of this group."]}


def test_dynamic_list_entries_are_each_validated_and_errors_name_the_entry():
    form = make_form({"type": "dynamiclist", "id": "List_1", "label": "联系人", "path": "contacts", "isRepeating": True,
                      "components": [textfield("name", validate={"required": True}),
                                     textfield("phone", validate={"validationType": "phone"}),
                                     textfield("verified", readonly=True)]})
    assert [f.key for f in form.fields] == ["contacts[].name", "contacts[].phone", "contacts[].verified"]
    good = {"contacts": [{"name": "李雷", "phone": "+8613800138000", "verified": "yes"}, {"name": "韩梅梅"}]}
    assert validate_submission(form, good) == {"contacts": [{"name": "李雷", "phone": "+8613800138000"}, {"name": "韩梅梅"}]}
    errors = errors_of(form, {"contacts": [{"name": "李雷"}, {"phone": "x"}]})
    assert errors == {"contacts[1].name": ["Field is required."],
                      "contacts[1].phone": ["Field must be a valid international phone number (e.g. +8613800138000)."]}
    assert errors_of(form, {"contacts": {"name": "x"}}) == {"contacts": ["Must be a list of entries."]}


def test_expression_and_filepicker_values_pass_through_unchecked():
    form = make_form({"type": "expression", "id": "Field_e", "key": "total", "expression": "=a + b",
                      "computeOn": "change"},
                     {"type": "filepicker", "id": "Field_f", "key": "attachment", "label": "附件",
                      "validate": {"required": True}})
    values = {"total": "anything", "attachment": None}
    assert validate_submission(form, values) == values


def test_form_keys_that_shadow_schema_members_are_ordinary_fields():
    form = make_form(textfield("load", validate={"required": True}), textfield("fields"), textfield("validate"))
    values = {"load": "a", "fields": "b", "validate": "c"}
    assert validate_submission(form, values) == values
    assert errors_of(form, {}) == {"load": ["Field is required."]}


def test_validation_error_message_names_each_field_with_its_label():
    with pytest.raises(FormValidationError) as caught:
        validate_submission(review_form(), {"decision": "maybe"})
    message = str(caught.value)
    assert message.startswith("form 'department_review' has 2 invalid fields: ")
    assert "opinion (审查意见): Field is required." in message and "decision (审查结论)" in message


def test_the_submission_schema_is_built_once_per_deployed_form():
    assert submission_schema(review_form()) is submission_schema(review_form())
    assert submission_schema(review_form()) is not submission_schema(intake_form())


@pytest.mark.parametrize("name", ["acceptance_request", "opening_application", "permit_application"])
def test_the_applicants_forms_take_a_phone_number_as_a_chinese_applicant_writes_it(name):
    """form-js's "phone" check wants the international form (+8613800138000), which refused
    the 13800138000 everyone writes: the three application forms use a pattern instead."""
    form = parse_form((FORMS / f"{name}.form").read_bytes(), f"{name}.form")
    assert "applicantPhone" in [f.key for f in form.fields]
    for good in ("13800138000", "+8613800138000", "0512-68001234", "01068001234"):
        assert "applicantPhone" not in errors_of(form, {"applicantPhone": good}), good
    for bad in ("12345", "1380013800", "23800138000", "+8523800138000", "13800138000x"):
        assert errors_of(form, {"applicantPhone": bad})["applicantPhone"] == [
            "请填写手机号（如 13800138000，可加 +86）或座机（如 0512-68001234）"], bad


def test_a_read_only_field_in_a_group_keeps_the_cases_value_instead_of_losing_it():
    form = make_form({"type": "group", "id": "Group_1", "label": "申请人", "path": "applicant", "components": [
        textfield("company", readonly=True), textfield("phone")]})
    case = {"applicant": {"company": "ACME Ltd"}}
    assert validate_submission(form, {"applicant": {"company": "改过的", "phone": "+8613800138000"}}, case) == {
        "applicant": {"company": "ACME Ltd", "phone": "+8613800138000"}}
    assert validate_submission(form, {"applicant": {"phone": "+8613800138000"}}, case) == {
        "applicant": {"company": "ACME Ltd", "phone": "+8613800138000"}}


@pytest.mark.parametrize("value, increment", [(10**28, 1), (1e29, 1), (1.5e300, 1), (1e30, "0.05")])
def test_a_huge_number_on_its_increment_is_accepted(value, increment):
    form = make_form({"type": "number", "id": "Field_n", "key": "n", "increment": increment})
    assert validate_submission(form, {"n": value}) == {"n": value}


def test_a_huge_number_off_its_increment_names_the_nearest_valid_values_exactly():
    form = make_form({"type": "number", "id": "Field_n", "key": "n", "increment": 2, "decimalDigits": 0})
    assert errors_of(form, {"n": 10**28 + 1}) == {"n": [
        "Please select a valid value, the two nearest valid values are "
        "10000000000000000000000000000 and 10000000000000000000000000002."]}
    assert errors_of(form, {"n": "1.00000000000000000000000000001"}) == {"n": ["Must be a number."]}
    digits = make_form({"type": "number", "id": "Field_n", "key": "n", "decimalDigits": 2, "serializeToString": True})
    assert errors_of(digits, {"n": "1.00000000000000000000000000001"}) == {
        "n": ["Value is expected to have at most 2 decimal digits."]}


def test_a_number_too_long_to_check_against_its_increment_is_refused_naming_the_field():
    form = make_form({"type": "number", "id": "Field_n", "key": "n", "increment": "0.05", "serializeToString": True})
    assert errors_of(form, {"n": "1e2000"}) == {
        "n": ["Value spans too many digits to be checked against the increment 0.05: enter a smaller value."]}


@pytest.mark.parametrize("pattern, value", [
    (r"^\d{17}[\dX]$", "11010119900307123X\n"),   # Python's $ matches before a final newline, JavaScript's not
    (r"^.{1,3}$", "a\rb"), (r"^.{1,3}$", "ab\u2028"), (r"^.{1,3}$", "ab\u2029")])   # nor does JavaScript's .
def test_a_pattern_refuses_what_javascripts_regexp_refuses(pattern, value):
    form = make_form(textfield("id", validate={"pattern": pattern}))
    assert errors_of(form, {"id": value}) == {"id": [f"Field must match pattern {pattern}."]}


@pytest.mark.parametrize("pattern, value", [
    (r"^\d{17}[\dX]$", "11010119900307123X"), (r"^.{1,3}$", "a b"), (r"^[.$]+\$\.$", ".$$."), (r"^a|b$", "ab\n")])
def test_a_pattern_accepts_what_javascripts_regexp_accepts(pattern, value):
    form = make_form(textfield("id", validate={"pattern": pattern}))
    assert validate_submission(form, {"id": value}) == {"id": value}
