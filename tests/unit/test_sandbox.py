"""The sandbox every model expression and script runs in: what a process designer may
write, which escapes it refuses, and the time and memory bounds it holds."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from engine import sandbox
from engine.sandbox import (
    ExpressionFailed,
    Limits,
    SandboxError,
    SandboxLimitExceeded,
    SandboxViolation,
    check,
    evaluate,
    execute,
)

APPLICATION = {
    "approved": True,
    "amount": 5000,
    "applicant": {"name": " Li Wei ", "department": "finance"},
    "reviewers": ["li", "wang", "zhang"],
    "submitted": datetime(2025, 9, 30, 9, 0),
}


def within(seconds: float):
    """Context manager asserting the block used under `seconds` of this thread's CPU time,
    the clock the sandbox's time limit reads (wall time also counts the other test
    processes sharing the machine's cores)."""
    class Timer:
        def __enter__(self):
            self.start = time.thread_time()

        def __exit__(self, *exc):
            elapsed = time.thread_time() - self.start
            assert elapsed < seconds, f"took {elapsed:.2f} s of CPU time"
    return Timer()


# --------------------------------------------------------------------------- what designers write

@pytest.mark.parametrize("condition, expected", [
    ("approved == True and amount > 1000", True),
    ("approved and amount <= 1000", False),
    ("applicant['department'] in ('finance', 'legal')", True),
    ("applicant['name'].strip().startswith('Li')", True),
    ("len(reviewers) >= 3 and 'wang' in reviewers", True),
    ("reviewers.count('li') == 1", True),
    ("applicant.get('deputy') is None", True),
    ("'high' if amount > 10000 else 'normal'", "normal"),
    ("[r.upper() for r in reviewers if r != 'li']", ["WANG", "ZHANG"]),
    ("{r: len(r) for r in reviewers}", {"li": 2, "wang": 4, "zhang": 5}),
    ("sorted(reviewers, reverse=True)[:2]", ["zhang", "wang"]),
    ("f\"{applicant['name'].strip()} asks for {amount:,} yuan\"", "Li Wei asks for 5,000 yuan"),
    ("'%s: %d' % (applicant['department'], amount)", "finance: 5000"),
    ("round(amount * 1.1, 2)", 5500.0),
    ("sum(x for x in range(5)) + max(3, 4) - min([1, 2])", 13),
    ("submitted.year == 2025 and submitted.isoweekday() == 2", True),
    ("'PT2S'", "PT2S"),
])
def test_gateway_conditions_and_mappings_evaluate_like_python(condition, expected):
    assert evaluate(condition, APPLICATION) == expected


def test_expression_does_not_assign_into_the_process_variables():
    names = dict(APPLICATION)
    evaluate("[x for x in reviewers]", names)
    assert names == APPLICATION


def test_script_assignments_come_back_as_process_variables():
    names = {"amount": 12000, "reviewers": ["li", "wang"]}
    execute("""
        level = 'director' if amount > 10000 else 'manager'
        reviewers.append('zhao')
        summary = ''
        for r in reviewers:
            summary += r + ';'
        counts = {}
        counts['total'] = len(reviewers)
        counts['total'] += 1
    """, names)
    assert names["level"] == "director"
    assert names["reviewers"] == ["li", "wang", "zhao"]
    assert names["summary"] == "li;wang;zhao;"
    assert names["counts"] == {"total": 4}


def test_script_del_removes_the_process_variable():
    names = {"draft": "x", "keep": 1}
    execute("del draft", names)
    assert names == {"keep": 1}


def test_script_assignment_in_a_branch_not_taken_keeps_the_old_value():
    names = {"amount": 10, "level": "clerk"}
    execute("if amount > 100:\n    level = 'director'", names)
    assert names["level"] == "clerk"


def test_comprehension_sees_process_variables_and_does_not_leak_its_variable():
    names = {"items": [1, 5, 9], "threshold": 4}
    execute("big = [i for i in items if i > threshold]", names)
    assert names["big"] == [5, 9] and "i" not in names


def test_range_assigned_by_a_script_is_stored_as_a_list():
    names: dict = {}
    execute("days = range(3)\nlater = (d * 2 for d in days)", names)
    assert names == {"days": [0, 1, 2], "later": [0, 2, 4]}


def test_host_functions_are_callable_but_not_written_back():
    def workdays(n):
        return (datetime(2025, 10, 8) + timedelta(days=n)).isoformat()
    names: dict = {}
    execute("due = workdays(3)", names, {"workdays": workdays})
    assert names == {"due": "2025-10-11T00:00:00"}
    assert evaluate("workdays(1)", {}, {"workdays": workdays}) == "2025-10-09T00:00:00"


def days(n):
    return (datetime(2025, 10, 8) + timedelta(days=n)).isoformat()


HOST = {"days": days, "variable": lambda name, default=None: default}


def test_a_variable_named_like_a_host_function_is_what_the_name_alone_reads():
    """A leave request's `days` was hidden by the engine's days(): `days > 5` compared a function."""
    assert evaluate("days > 5", {"days": 7}, HOST) is True
    assert evaluate("days(1)", {"days": 7}, HOST) == "2025-10-09T00:00:00"      # a call is the function
    assert evaluate("days(1)", {}, HOST) == "2025-10-09T00:00:00"
    with pytest.raises(SandboxViolation, match="function or type"):             # no variable: the function
        evaluate("days", {}, HOST)


def test_a_name_used_both_as_host_function_and_as_variable_is_refused_with_the_way_out():
    for run in (lambda: evaluate("days(days)", {"days": 7}, HOST), lambda: check("days(days)", functions=HOST),
                lambda: execute("later = days(days)", {"days": 7}, HOST)):
        with pytest.raises(SandboxViolation, match=r"variable\('days'\)"):
            run()
    check("days(days)")                                     # without host functions it is plain Python
    assert evaluate("[days for days in (1, 2)]", {}, HOST) == [1, 2]


def test_a_script_may_set_a_variable_named_like_a_host_function_but_not_call_it_too():
    names = {"days": 7}
    execute("days = days + 1\nlate = days > 5", names, HOST)
    assert names == {"days": 8, "late": True}
    names = {}
    execute("if False:\n    days = 3\ndue = 1", names, HOST)     # not assigned: no function written back
    assert names == {"due": 1}
    with pytest.raises(SandboxViolation, match="days"):
        execute("days = 3\nlater = days(1)", {}, HOST)


def test_juels_true_false_and_null_are_true_false_and_none_unless_a_variable_has_the_name():
    assert evaluate("[true, false, null]", {}) == [True, False, None]
    assert evaluate("approved == true and comment != null", {"approved": True, "comment": "ok"}) is True
    assert evaluate("[x for x in (true, null)]", {}) == [True, None]             # in a comprehension's scope too
    assert evaluate("null", {"null": "x"}) == "x"
    names: dict = {}
    execute("flag = false\nnull = 1", names)
    assert names == {"flag": False, "null": 1}


def test_indented_script_from_bpmn_xml_runs():
    names: dict = {}
    execute("\n        a = 1\n        b = a + 1\n    ", names)
    assert names == {"a": 1, "b": 2}


# --------------------------------------------------------------------------- escapes

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "__import__('os')",
    "open('/etc/passwd')",
    "getattr(x, '__class__')",
    "'{0.__class__}'.format(1)",
    "'{x}'.format_map({'x': 1})",
    "str.format('{0.__class__}', 1)",
    "f'{x.__class__}'",
    "f'{x:{x.__class__}}'",
    "(y for y in ()).gi_frame",
    "(y for y in ()).gi_frame.f_back.f_globals",
    "[].__class__",
    "type(1)",
    "eval('1')",
    "exec('x=1')",
    "compile('1', '', 'eval')",
    "globals()",
    "locals()",
    "vars()",
    "lambda: 1",
    "x.__dict__",
    "x._private",
    "_secret",
    "__builtins__",
    "int.mro()",
    "(x := 1)",
    "print(*x)",
    "dict(**x)",
    "{**x}",
    "b'bytes'",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_known_escape_payload_is_refused(payload):
    with pytest.raises(SandboxViolation):
        check(payload)
    with pytest.raises(SandboxViolation):
        evaluate(payload, {"x": [1]})


def test_class_base_subclasses_walk_is_refused():
    with pytest.raises(SandboxViolation, match="'_'"):
        evaluate("().__class__.__base__.__subclasses__()", {})


SCRIPT_ESCAPES = [
    "import os",
    "from os import path",
    "import os as o",
    "def f():\n    pass",
    "class A:\n    pass",
    "global x",
    "try:\n    x = 1\nexcept Exception:\n    pass",
    "with x:\n    pass",
    "raise ValueError()",
    "x.attr = 1",
    "del x.attr",
    "x[0:1] = [2]",
    "len = 3",
    "del sum",
    "async def f():\n    pass",
    "match x:\n    case _:\n        pass",
]


@pytest.mark.parametrize("script", SCRIPT_ESCAPES)
def test_forbidden_script_statement_is_refused(script):
    with pytest.raises(SandboxViolation):
        check(script, "exec")


@pytest.mark.parametrize("payload", [
    "'x'.encode()",
    "'x'.translate({})",
    "(1).to_bytes(2, 'big')",
    "{}.fromkeys(x)",
    "(y for y in x).gi_suspended",
    "(y for y in x).close()",
    "enumerate(x).count",
    "x.pop.real",
    "submitted.tzinfo",
    "len.name",
])
def test_attributes_outside_the_allow_list_are_refused_at_run_time(payload):
    with pytest.raises(SandboxViolation, match="not available"):
        evaluate(payload, {"x": [1], "submitted": datetime(2025, 1, 1)})


def test_misspelt_method_on_data_is_an_ordinary_error():
    with pytest.raises(ExpressionFailed, match="AttributeError"):
        evaluate("name.strp()", {"name": "x"})


def test_host_function_objects_expose_no_attributes():
    with pytest.raises(SandboxViolation, match="not available"):
        evaluate("workdays.close", {}, {"workdays": lambda n: n})


def test_a_function_is_not_a_result():
    with pytest.raises(SandboxViolation, match="not a value"):
        evaluate("len", {})


# --------------------------------------------------------------------------- resource bounds

BOMBS = [
    ("eval", "9**9**9"),
    ("eval", "'a'*10**9"),
    ("eval", "[0]*10**9"),
    ("eval", "10**9 * [0]"),
    ("eval", "1 << 10**9"),
    ("eval", "[x for x in range(10**12)]"),
    ("eval", "sum(1 for a in range(10**6) for b in range(10**6))"),
    ("eval", "[[[0]*1000 for a in range(1000)] for b in range(1000)]"),
    ("eval", "'ab'.center(10**9)"),
    ("eval", "'x'.join(['y' * 500000] * 10)"),
    ("eval", "('a'*1000).replace('a', 'a'*1000).replace('a', 'a'*1000)"),
    ("eval", "'%0999999999d' % 1"),
    ("eval", "f'{1:99999999}'"),
    ("eval", "round(12, -10**9)"),
    ("exec", "for i in range(10**12):\n    pass"),
    ("exec", "while True:\n    pass"),
    ("exec", "s = 'a'\nfor i in range(100):\n    s = s + s"),
    ("exec", "x = [1]\nfor i in range(100):\n    x.extend(x)"),
    ("exec", "x = [1]\nfor i in range(100):\n    x += x"),
    ("exec", "d = {}\ni = 0\nwhile True:\n    d[i] = i\n    i += 1"),
    ("exec", "a = [0]*1000\nb = [a]*1000\nc = [b]*1000\nt = str(c)"),
    ("exec", "t = (0,)*1000\nt2 = (t,)*1000\nt3 = (t2,)*1000\nd = {t3: 1}"),
    ("exec", "x = []\nfor i in range(1000):\n    x = [x]"),
]


@pytest.mark.parametrize("mode, bomb", BOMBS)
def test_resource_bomb_hits_a_limit_quickly(mode, bomb):
    with within(2.0), pytest.raises(SandboxLimitExceeded):
        (evaluate if mode == "eval" else execute)(bomb, {})


def test_endless_loop_stops_at_the_time_limit():
    with within(0.5), pytest.raises(SandboxLimitExceeded, match="0.1 s of CPU time"):
        execute("while True:\n    pass", {}, time_limit=0.1)


def test_integer_hash_collisions_stop_at_the_time_limit():
    collide = f"r = list(range(0, {2**61 - 1} * 200000, {2**61 - 1}))\ns = set(r)"
    with within(1.5), pytest.raises(SandboxLimitExceeded, match="CPU time"):
        execute(collide, {}, time_limit=0.3)


def test_step_limit_is_deterministic():
    with pytest.raises(SandboxLimitExceeded, match="1,000 steps"):
        execute("for i in range(5000):\n    pass", {}, limits=Limits(steps=1000))


def test_memory_limit_counts_comprehension_elements():
    assert len(evaluate("[i for i in range(900)]", {}, limits=Limits(cells=1000))) == 900
    with pytest.raises(SandboxLimitExceeded, match="memory limit"):
        evaluate("[i for i in range(2000)]", {}, limits=Limits(cells=1000))


def test_text_built_line_by_line_stays_within_limits():
    names: dict = {}
    execute("s = ''\nfor i in range(2000):\n    s += 'line %d\\n' % i", names)
    assert names["s"].count("\n") == 2000


# --------------------------------------------------------------------------- errors a designer can act on

def test_static_error_names_line_column_and_snippet():
    with pytest.raises(SandboxViolation) as caught:
        check("total = 1\nname = applicant.__class__", "exec")
    err = caught.value
    assert (err.line, err.column) == (2, 8)
    assert err.snippet == "applicant.__class__"
    assert "line 2, column 8" in str(err) and "'_'" in str(err)


def test_column_counts_the_indentation_removed_from_a_script():
    with pytest.raises(SandboxViolation) as caught:
        check("    a = 1\n    import os", "exec")
    assert (caught.value.line, caught.value.column) == (2, 5)


def test_syntax_error_is_a_sandbox_error_with_a_location():
    with pytest.raises(SandboxError) as caught:
        check("amount >")
    assert caught.value.line == 1 and "syntax" in str(caught.value)


def test_runtime_error_wraps_the_original_and_names_the_expression():
    with pytest.raises(ExpressionFailed) as caught:
        evaluate("amount > limit", {"amount": 1})
    err = caught.value
    assert isinstance(err.original, NameError)
    assert "amount > limit" in str(err) and "NameError" in str(err)
    assert (err.line, err.column) == (1, 10)


def test_runtime_error_in_a_script_points_at_the_failing_line():
    with pytest.raises(ExpressionFailed) as caught:
        execute("a = 1\nb = a / 0", {})
    assert isinstance(caught.value.original, ZeroDivisionError)
    assert caught.value.line == 2 and caught.value.snippet == "a / 0"


def test_limit_error_points_at_the_operation():
    with pytest.raises(SandboxLimitExceeded) as caught:
        execute("n = 10**9\nbig = 'x' * n", {})
    assert caught.value.line == 2 and caught.value.snippet == "'x' * n"


# --------------------------------------------------------------------------- compile cache

def test_same_source_is_compiled_once():
    source = "amount > 4321 and approved"
    before = sandbox._compile.cache_info()
    for _ in range(5):
        evaluate(source, APPLICATION)
    after = sandbox._compile.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 4


def test_cache_is_keyed_by_mode():
    sandbox._compile("x = 1", "exec")
    with pytest.raises(SandboxViolation):
        check("x = 1", "eval")


def test_limits_hold_in_a_worker_thread_without_signals():
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=2) as pool:
        endless = pool.submit(execute, "while True:\n    pass", {}, time_limit=0.1)
        condition = pool.submit(evaluate, "approved and amount > 1000", APPLICATION)
        assert condition.result() is True
        with pytest.raises(SandboxLimitExceeded):
            endless.result(timeout=5)


def test_a_syntax_error_at_the_end_of_an_expression_names_its_line_without_a_column_of_none():
    """Python gives no column (offset 0) when the text ends too early: the message said
    "column None"."""
    with pytest.raises(SandboxViolation) as err:
        check("approved ==")
    assert "None" not in str(err.value) and "(at line 1: approved ==)" in str(err.value), str(err.value)
    with pytest.raises(SandboxViolation) as err:
        check("approved === 1")
    assert "(at line 1, column " in str(err.value), str(err.value)
