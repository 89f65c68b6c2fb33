"""The invariant campaign's runner (margin_maintenance.campaign): its planning, forge's JSON,
the regression it saves, the record it keeps; and, end to end, that a law which fails is
caught, reported and saved (the canary), and that the saved regressions still pass.

The campaign proper runs in `make test` before pytest (fixed seed, 20,000 steps); here only
short forge runs, so the file stays quick."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from margin_maintenance import campaign as c

FORGE_JSON = {
    "test/Invariants.t.sol:Invariants": {
        "test_results": {
            "invariant_laws()": {
                "status": "Success",
                "reason": None,
                "counterexample": None,
                "kind": {"Invariant": {"runs": 2, "calls": 2000, "reverts": 7}},
            }
        }
    },
    "test/Invariants.t.sol:ThinPoolInvariants": {
        "test_results": {
            "invariant_laws()": {
                "status": "Failure",
                "reason": "unwind: trader 1 can neither close nor be liquidated",
                "counterexample": {
                    "Sequence": [
                        1,
                        [
                            {
                                "sender": "0x00000000000000000000000000000000fe28a217",
                                "calldata": "0xc4ae3168",
                                "signature": "togglePause()",
                                "args": "",
                            }
                        ],
                    ]
                },
                "kind": {"Invariant": {"runs": 1, "calls": 512, "reverts": 3}},
            }
        }
    },
}


def test_plan_chunks__covers_the_steps_asked_for():
    # 10 runs x 1,000 steps x 2 worlds = 20,000 steps a chunk
    assert c.plan_chunks(20_000, 1_000, 10) == [10]
    assert c.plan_chunks(1_000_000, 1_000, 10) == [10] * 50
    assert c.plan_chunks(25_000, 1_000, 10) == [10, 3]  # the last chunk rounds up
    assert sum(r * 1_000 * 2 for r in c.plan_chunks(25_000, 1_000, 10)) >= 25_000
    assert c.plan_chunks(0, 1_000, 10) == [1]


def test_seeds__fixed_or_new_and_one_per_chunk():
    assert c.parse_seed("0x4d4d") == 0x4D4D
    assert c.parse_seed("17") == 17
    assert c.parse_seed(None) != c.parse_seed(None)  # a new one each time (64 random bits)
    assert [c.chunk_seed(5, i) for i in range(3)] == [5, 6, 7]


def test_parse_forge_json__calls_reverts_and_the_failing_world():
    text = "Compiling...\n" + json.dumps(FORGE_JSON)
    calls, reverts, failures = c.parse_forge_json(text)
    assert (calls, reverts) == (2_512, 10)
    [failure] = failures
    assert failure["world"] == "ThinPoolInvariants"
    assert failure["reason"].startswith("unwind:")
    assert c.counterexample_calls(failure)[0]["signature"] == "togglePause()"


def test_parse_forge_json__no_json_is_an_error_not_a_pass():
    with pytest.raises(c.CampaignError, match="no JSON"):
        c.parse_forge_json("Error: compilation failed")


def test_regression_source__replays_each_call_in_the_world_then_the_acting_laws():
    failure = c.parse_forge_json(json.dumps(FORGE_JSON))[2][0]
    src = c.regression_source(
        "Regression_x", failure["world"], failure["reason"], c.counterexample_calls(failure)
    )
    assert 'import {ThinPool} from "../Invariants.t.sol";' in src
    assert "contract Regression_x is ThinPool {" in src
    # a checksummed address literal (solc refuses any other), the exact calldata
    assert '_replay(0x00000000000000000000000000000000FE28a217, hex"c4ae3168");' in src
    assert src.index("_replay(") < src.index("afterRun();")


def test_read_counters__adds_up_every_run(tmp_path: Path):
    path = tmp_path / "counters.jsonl"
    path.write_text('{"steps":1000,"gaps":3}\n{"steps":1000,"bank_runs":2}\n')
    assert c.read_counters(path) == Counter(steps=2000, gaps=3, bank_runs=2)
    assert c.read_counters(tmp_path / "missing.jsonl") == Counter()


def test_read_counters__forge_repeating_the_last_run__counted_once(tmp_path: Path):
    path = tmp_path / "counters.jsonl"
    deep, thin = '{"steps":996,"gaps":1}', '{"steps":1000,"gaps":1}'  # the worlds interleave
    path.write_text(f'{{"steps":999,"gaps":2}}\n{deep}\n{thin}\n{deep}\n{thin}\n')
    assert c.read_counters(path) == Counter(steps=2995, gaps=4)


def test_summary__says_what_was_not_reached():
    result = c.ChunkResult(1, 2_000, 0, 2.0, Counter(steps=2_000, gaps=4, bank_runs=3))
    lines = c.summary_lines([result], 2.0, 1, 1_000)
    assert lines[0].startswith("campaign: 2,000 steps in 2.0 s (1,000 steps/s)")
    assert "gaps 4" in lines[1]
    assert lines[2].startswith("NOT reached:") and "liquidations_full" in lines[2]


def test_render_record__one_section_per_label():
    summary = c.summary_json([c.ChunkResult(1, 4_000, 0, 2.0, Counter(gaps=5))], 2.0, 1, 1_000)
    md = c.render_record({"fuzz": {**summary, "result": "every law held"}})
    assert "## fuzz" in md
    assert "**2,000 steps/s**" in md
    assert "| gaps | 5 |" in md


# ---- Through forge ----

needs_build = pytest.mark.skipif(
    not (c.MANIFEST.exists() and c.FORGE.exists()), reason="needs `make setup` and a compiled build"
)


def _campaign(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["python", "-m", "margin_maintenance.campaign", "--no-progress", *args],
        cwd=c.REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@needs_build
def test_campaign__through_forge__a_failing_law_is_caught_saved_and_replayed(tmp_path: Path):
    """One test, so that no two forge builds of fuzz/ race (the suite runs on two workers).

    1. A law that must fail (MM_CAMPAIGN_CANARY=1: no full liquidation may happen) fails the
       campaign with exit 1, names the law, and saves the shrunk sequence.
    2. That saved file, put among the regressions, compiles and fails under the canary and
       passes without it: a plain regression test that replays the sequence.
    3. A short campaign without the canary holds every law, and the regressions pass."""
    canary = {"MM_CAMPAIGN_CANARY": "1"}
    proc = _campaign(
        tmp_path, "--steps", "4000", "--seed", "0x5", "--save-to", str(tmp_path), env=canary
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "VIOLATION" in proc.stdout and "canary" in proc.stdout
    saved = sorted(tmp_path.glob("Regression*.t.sol"))
    assert saved, proc.stdout
    text = saved[0].read_text()
    assert "canary" in text and "_replay(" in text and "afterRun();" in text

    target = c.REGRESSION_DIR / "CanaryCheck.t.sol"
    name = saved[0].stem
    target.write_text(text.replace(f"contract {name} ", "contract CanaryCheck "))
    try:
        args = ["--match-path", f"test/regressions/{target.name}"]
        env = c.forge_env(1, 1, c.reports_dir() / "canary.jsonl")
        failed = c.parse_forge_json(c.run_forge(args, {**env, **canary}))[2]
        assert [f["reason"] for f in failed] and "canary" in failed[0]["reason"]
        assert c.parse_forge_json(c.run_forge(args, env))[2] == []
    finally:
        target.unlink()

    out = tmp_path / "summary.json"
    proc = _campaign(tmp_path, "--steps", "4000", "--seed", "0x7", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "regression still failing" not in proc.stderr
    summary = json.loads(out.read_text())
    assert summary["steps"] >= 4_000
    assert summary["counters"]["steps"] > 0
